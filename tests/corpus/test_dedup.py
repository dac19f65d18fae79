"""dedup: planted exact and near duplicates are found, nothing else is removed, and N parts + a merge
write exactly what one part writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gptkit.corpus.dedup import Settings, components, dedup_files
from gptkit.corpus.minhash import LSH, shingles, signatures
from gptkit.corpus.shuffle import Run, group_pairs, merge, sort_entries
from gptkit.errors import GptkitError

from .synthetic import jaccard, planted_corpus, read_jsonl_lines, write_jsonl


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("planted")
    records, truth = planted_corpus(3000, seed=1)
    half = len(records) // 2  # two input files: documents are numbered across them
    write_jsonl(folder / "a.jsonl", records[:half])
    write_jsonl(folder / "b.jsonl", records[half:])
    return folder, records, truth


@pytest.fixture(scope="module")
def one_part(planted, tmp_path_factory):
    folder, _, _ = planted
    out = tmp_path_factory.mktemp("dedup") / "out"
    report = dedup_files([str(folder / "a.jsonl"), str(folder / "b.jsonl")], out)
    return out, report


def kept_ids(out) -> list[str]:
    return [json.loads(line)["id"] for line in read_jsonl_lines(out)]


def test_planted_duplicates_are_found_with_high_precision(planted, one_part):
    _, records, truth = planted
    out, report = one_part
    kept = set(kept_ids(out))
    removed = {i for i, r in enumerate(records) if r["id"] not in kept}
    planted_copies = set(truth["exact"]) | set(truth["near"])
    near = {i for i, s in truth["similarity"].items() if s >= 0.8}
    assert len(near) > 200 and len(truth["exact"]) > 100
    recall_near = len(near & removed) / len(near)
    recall_exact = len(set(truth["exact"]) & removed) / len(truth["exact"])
    precision = len(removed & planted_copies) / len(removed)
    assert recall_near >= 0.95, recall_near
    assert recall_exact == 1.0
    assert precision >= 0.95, precision
    # never an original: the first of a cluster in input order is the one kept
    assert not removed - planted_copies
    assert report["documents"] == len(records) and report["kept"] == len(kept)
    assert report["removed"]["exact duplicate"] + report["removed"]["near duplicate"] == len(removed)


def test_every_removed_document_is_similar_enough_to_one_kept_before_it(planted, one_part):
    _, records, truth = planted
    out, _ = one_part
    kept = set(kept_ids(out))
    for i, r in enumerate(records):
        if r["id"] in kept:
            continue
        source = truth["exact"].get(i, truth["near"].get(i))
        assert source is not None and source < i


def test_kept_records_are_the_input_lines_unchanged_in_order(planted, one_part):
    folder, records, _ = planted
    out, _ = one_part
    lines = (folder / "a.jsonl").read_text().splitlines() + (folder / "b.jsonl").read_text().splitlines()
    kept = read_jsonl_lines(out)
    by_id = {json.loads(line)["id"]: line for line in lines}
    assert kept == [by_id[json.loads(line)["id"]] for line in kept]  # byte for byte
    positions = [lines.index(line) for line in kept]
    assert positions == sorted(positions)


def test_two_parts_and_a_merge_write_what_one_part_writes(planted, one_part, tmp_path):
    folder, _, _ = planted
    inputs = [str(folder / "a.jsonl"), str(folder / "b.jsonl")]
    out, report = one_part
    split = tmp_path / "split"
    second = dedup_files(inputs, split, part="2/2")  # the parts in any order
    first = dedup_files(inputs, split, part="1/2")
    assert first["hi"] == second["lo"] and "summary" not in first
    merged = dedup_files(inputs, split, merge_only=True)
    assert (split / "part-00001-of-00001.jsonl").read_bytes() == (out / "part-00001-of-00001.jsonl").read_bytes()
    for key in ("documents", "kept", "removed"):
        assert merged[key] == report[key]
    for key in ("candidate_pairs", "verified_near_pairs", "verified_exact_pairs", "clusters"):
        assert merged["extra"][key] == report["extra"][key]


def test_a_merge_before_every_part_is_signed_is_refused(planted, tmp_path):
    folder, _, _ = planted
    inputs = [str(folder / "a.jsonl")]
    dedup_files(inputs, tmp_path / "o", part="1/3")
    with pytest.raises(GptkitError, match="part 2/3 is not signed"):
        dedup_files(inputs, tmp_path / "o", merge_only=True)


def test_a_run_started_again_resumes_and_ends_with_the_same_files(planted, one_part, tmp_path, monkeypatch):
    import gptkit.corpus.dedup as dedup
    import gptkit.corpus.step as step

    folder, _, _ = planted
    inputs = [str(folder / "a.jsonl"), str(folder / "b.jsonl")]
    out, _ = one_part
    monkeypatch.setattr(dedup, "CHUNK", 500)
    monkeypatch.setattr(step, "CHECKPOINT_CHARS", 100_000)
    calls = {"n": 0}
    real = dedup.band_keys

    def dying(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(dedup, "band_keys", dying)
    with pytest.raises(KeyboardInterrupt):
        dedup_files(inputs, tmp_path / "r")
    state = json.loads((tmp_path / "r" / ".dedup" / "sign-part-00001-of-00001" / "state.json").read_text())
    assert state["chunks"] and not state["done"]
    report = dedup_files(inputs, tmp_path / "r")
    assert (tmp_path / "r" / "part-00001-of-00001.jsonl").read_bytes() == (out / "part-00001-of-00001.jsonl").read_bytes()
    assert report["documents"] == 3000


def test_short_and_empty_documents(tmp_path):
    records = [{"text": t} for t in ["", "one two", "One, two!", "  ", "three", "one two three four five six"]]
    write_jsonl(tmp_path / "in.jsonl", records)
    report = dedup_files([str(tmp_path / "in.jsonl")], tmp_path / "out")
    kept = [json.loads(line)["text"] for line in read_jsonl_lines(tmp_path / "out")]
    assert kept == ["", "one two", "three", "one two three four five six"]
    assert report["removed"] == {"exact duplicate": 2}


def test_compressed_output_and_parquet_input(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    import zstandard

    texts = ["alpha beta gamma delta epsilon zeta", "alpha beta gamma delta epsilon zeta", "other words here"]
    pq.write_table(pa.table({"text": texts, "n": [1, 2, 3]}), tmp_path / "in.parquet")
    dedup_files([str(tmp_path / "in.parquet")], tmp_path / "out", compression="zst")
    data = zstandard.ZstdDecompressor().decompressobj().decompress((tmp_path / "out" / "part-00001-of-00001.jsonl.zst").read_bytes())
    assert [json.loads(line) for line in data.decode().splitlines()] == [{"text": texts[0], "n": 1}, {"text": texts[2], "n": 3}]


# --- the pieces --------------------------------------------------------------------------------------

def test_minhash_agreement_estimates_jaccard():
    records, truth = planted_corpus(400, seed=3)
    lsh = LSH(bands=32, rows=8)
    a, b = lsh.parameters()
    errors = []
    for copy, source in list(truth["near"].items())[:30]:
        s, per = shingles([records[source]["text"], records[copy]["text"]], 5)
        sig = signatures(s, per, a, b)
        errors.append((sig[0] == sig[1]).mean() - jaccard(records[source]["text"], records[copy]["text"]))
    assert abs(np.mean(errors)) < 0.02 and np.std(errors) < 0.06


def test_the_merge_of_sorted_runs_is_sorted_and_never_splits_a_key(tmp_path):
    rng = np.random.default_rng(0)
    runs, everything = [], []
    for i in range(7):
        keys = rng.integers(0, 50, size=rng.integers(0, 400)).astype(np.uint64)
        docs = rng.permutation(10_000)[: len(keys)].astype(np.uint64)
        entries = sort_entries(keys, docs)
        path = tmp_path / f"run{i}.bin"
        np.zeros(3, dtype=entries.dtype).tofile(path)  # a run starts at an offset
        with open(path, "ab") as f:
            entries.tofile(f)
        runs.append(Run(path, 3 * entries.dtype.itemsize, len(entries)))
        everything.append(entries)
    chunks = list(merge(runs, buffer_entries=64))
    merged = np.concatenate(chunks)
    expected = np.concatenate(everything)
    expected = expected[np.lexsort((expected["doc"], expected["key"]))]
    assert np.array_equal(merged, expected)
    seen = set()
    for chunk in chunks:
        keys = set(chunk["key"].tolist())
        assert not keys & seen
        seen |= keys
    a, b = group_pairs(merged)
    assert np.all(a < b)


def test_components_keep_the_first_of_each_cluster():
    a = np.array([5, 2, 9, 9, 30], dtype=np.uint64)
    b = np.array([7, 7, 12, 40, 40], dtype=np.uint64)
    nodes, keeper = components(a, b)
    found = dict(zip(nodes.tolist(), keeper.tolist()))
    assert found == {2: 2, 5: 2, 7: 2, 9: 9, 12: 9, 30: 9, 40: 9}


def test_bad_settings_are_one_line_errors(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"text": "a"}\n')
    with pytest.raises(GptkitError, match="--threshold"):
        dedup_files([str(tmp_path / "in.jsonl")], tmp_path / "o", Settings(threshold=1.5))
    with pytest.raises(GptkitError, match="without --part"):
        dedup_files([str(tmp_path / "in.jsonl")], tmp_path / "o", part="1/2", merge_only=True)


def test_one_out_holds_a_run_in_one_part_then_in_two(planted, one_part, tmp_path):
    folder, _, _ = planted
    inputs = [str(folder / "a.jsonl"), str(folder / "b.jsonl")]
    out, _ = one_part
    again = tmp_path / "again"
    dedup_files(inputs, again)
    for part in ("1/2", "2/2"):
        dedup_files(inputs, again, part=part)
    dedup_files(inputs, again, merge_only=True)  # the run in two parts, signed last
    dedup_files(inputs, again)  # and the whole corpus in one part again
    assert (again / "part-00001-of-00001.jsonl").read_bytes() == (out / "part-00001-of-00001.jsonl").read_bytes()
