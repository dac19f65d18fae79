"""`dialogue extract`: a generated Reddit-style dump gives exactly the root-to-leaf sessions a plain
in-memory reference computes, in any compression, in parts, deterministically, and a run killed
with SIGKILL at each stage and rerun writes the same bytes."""

from __future__ import annotations

import bz2
import gzip
import json
import os
import random
import signal
import subprocess
import sys
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import zstandard
from click.testing import CliRunner

from gptkit.chat.data import read_dialogues
from gptkit.chat.filters import FilterConfig
from gptkit.chat.reddit import ExtractConfig, build, by_id, extract, split
from gptkit.cli.main import cli
from gptkit.errors import GptkitError
from tests.chat.reddit_dump import generate, reference_sessions, write

SMALL = 2_000  # bytes of dump a partition: a small dump still spans many partitions


@pytest.fixture(scope="module")
def dump(tmp_path_factory) -> tuple[Path, list[dict]]:
    records = generate(100)
    return write(tmp_path_factory.mktemp("dump") / "RC_2015-01.jsonl", records), records


def sessions(path: Path) -> list[list[str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run(inputs, out: Path, **kw) -> Path:
    extract(ExtractConfig([str(p) for p in inputs], str(out), **{"filters": None, "partition_bytes": SMALL, **kw}),
            progress=False)
    return out


def test_sessions_are_exactly_the_reference_root_to_leaf_paths(dump, tmp_path):
    path, records = dump
    got = sessions(run([path], tmp_path / "s.jsonl"))
    assert Counter(map(tuple, got)) == Counter(map(tuple, reference_sessions(records)))
    assert len(got) > 150 and max(map(len, got)) == 61  # the deep chain: its title and 60 comments
    assert not (tmp_path / "s.jsonl.work").exists()  # the work directory goes when the output is whole


def test_output_is_deterministic_and_readable_by_dialogue_train(dump, tmp_path):
    path, _ = dump
    a, b = run([path], tmp_path / "a.jsonl"), run([path], tmp_path / "b.jsonl")
    assert a.read_bytes() == b.read_bytes()
    assert read_dialogues(a) == sessions(a)  # `dialogue train --data` reads it as is


def test_parts_are_disjoint_and_together_the_whole(dump, tmp_path):
    path, _ = dump
    whole = Counter(map(tuple, sessions(run([path], tmp_path / "all.jsonl"))))
    parts = [Counter(map(tuple, sessions(run([path], tmp_path / f"p{i}.jsonl", part=f"{i}/3")))) for i in (1, 2, 3)]
    assert sum(parts, Counter()) == whole and all(parts)


@pytest.mark.parametrize("suffix, compress", [(".zst", lambda b: zstandard.ZstdCompressor().compress(b)),
                                              (".gz", gzip.compress), (".bz2", bz2.compress)])
def test_compressed_dumps_and_split_files_give_the_same_sessions(dump, tmp_path, suffix, compress):
    path, records = dump
    lines = path.read_bytes().splitlines(keepends=True)
    halves = [tmp_path / f"RC_{i}.jsonl{suffix}" for i in (1, 2)]
    for half, chunk in zip(halves, (lines[: len(lines) // 2], lines[len(lines) // 2:])):
        half.write_bytes(compress(b"".join(chunk)))
    got = sessions(run(halves, tmp_path / "s.jsonl"))
    assert Counter(map(tuple, got)) == Counter(map(tuple, reference_sessions(records)))


def test_filters_cut_turns_and_report_threads_sessions_and_turns(tmp_path):
    records = [
        {"id": "a", "title": "What is new?", "author": "op", "created_utc": 1},
        {"id": "c1", "parent_id": "t3_a", "link_id": "t3_a", "body": "See i.redd.it/x.jpg", "author": "u", "created_utc": 2},
        {"id": "c2", "parent_id": "t1_c1", "link_id": "t3_a", "body": "It is a cat.", "author": "v", "created_utc": 3},
        {"id": "c3", "parent_id": "t3_a", "link_id": "t3_a", "body": "I like it.", "author": "v", "created_utc": 4},
        {"id": "c4", "parent_id": "t1_c3", "link_id": "t3_a", "body": "谢谢", "author": "w", "created_utc": 5},
        {"id": "b", "title": "看这个 bit.ly/3abc", "author": "op", "created_utc": 1},
        {"id": "d1", "parent_id": "t3_b", "link_id": "t3_b", "body": "好的，我去看看", "author": "u", "created_utc": 2},
    ]
    path = write(tmp_path / "d.jsonl", records)
    result = CliRunner().invoke(cli, ["dialogue", "extract", "--input", str(path), "--out", str(tmp_path / "s.jsonl"),
                                      "--quiet"])
    assert result.exit_code == 0, result.output
    assert sessions(tmp_path / "s.jsonl") == [["What is new?", "I like it."]]
    lines = result.output.splitlines()
    assert lines[0] == f"wrote 1 sessions (2 turns) to {tmp_path / 's.jsonl'}"
    assert "  removed 1 threads, 2 sessions, 4 turns: url" in lines  # thread b whole (2 turns), c1 and its reply
    assert "  removed 0 threads, 1 sessions, 1 turns: no common word of its language" in lines  # 谢谢
    assert "  removed 0 threads, 0 sessions, 0 turns: bracket" in lines  # every filter has its line
    args = ["dialogue", "extract", "--input", str(path), "--out", str(tmp_path / "t.jsonl"), "--no-url-filter",
            "--no-common-word-filter", "--quiet"]  # dialogue train's filter flags
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert len(sessions(tmp_path / "t.jsonl")) == 3  # c1-c2, c3-c4, and thread b's one


def test_frequent_responses_are_counted_over_the_whole_dump(tmp_path):
    records = [{"id": f"t{i}", "title": f"Question {i}?", "created_utc": i} for i in range(4)]
    records += [{"id": f"c{i}", "parent_id": f"t3_t{i}", "link_id": f"t3_t{i}", "body": "I don't know.",
                 "created_utc": 9} for i in range(3)]
    records += [{"id": "c9", "parent_id": "t3_t3", "link_id": "t3_t3", "body": "It is on the left.", "created_utc": 9}]
    path = write(tmp_path / "d.jsonl", records)
    got = sessions(run([path], tmp_path / "s.jsonl", filters=FilterConfig(max_response_count=2), part="1/1"))
    assert got == [["Question 3?", "It is on the left."]]


def test_lone_surrogate_escapes_become_replacement_characters(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "a", "title": "Hi \\ud83d"}\n'
                    '{"id": "c", "parent_id": "t3_a", "link_id": "t3_a", "body": "\\ud83d\\ude00 ok \\udc00"}\n')
    assert sessions(run([path], tmp_path / "s.jsonl")) == [["Hi \ufffd", "\U0001f600 ok \ufffd"]]


@pytest.mark.parametrize("line, fragment", [
    ("{not json", "d.jsonl:2: not valid JSON"),
    ('{"id": "c", "parent_id": "t3_a", "body": "x"}', "d.jsonl:2: field link_id"),
    ('{"id": "c", "body": "x"}', "d.jsonl:2: neither a comment"),
    ('{"parent_id": "t3_a", "link_id": "t3_a", "body": "x"}', "d.jsonl:2: field id"),
])
def test_bad_lines_are_one_clear_error_naming_file_and_line(tmp_path, line, fragment):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "a", "title": "t"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(GptkitError, match=fragment):
        run([path], tmp_path / "s.jsonl")


def test_damaged_compression_and_output_over_an_input_are_clear_errors(dump, tmp_path):
    path, _ = dump
    bad = tmp_path / "RC.jsonl.gz"
    bad.write_bytes(gzip.compress(path.read_bytes())[:500])
    with pytest.raises(GptkitError, match="cannot read .*RC.jsonl.gz"):
        run([bad], tmp_path / "s.jsonl")
    with pytest.raises(GptkitError, match="is one of the inputs"):
        run([path], path)


def _extract_process(dump: Path, out: Path, pause: str) -> subprocess.Popen:
    code = ("import sys; from gptkit.chat.reddit import ExtractConfig, extract; "
            f"extract(ExtractConfig([{str(dump)!r}], {str(out)!r}, None, partition_bytes={SMALL}), progress=False)")
    env = {**os.environ, "GPTKIT_PAUSE_AT": pause}
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            text=True)


def test_a_run_killed_at_each_stage_and_rerun_writes_the_same_bytes(dump, tmp_path):
    path, _ = dump
    expected = run([path], tmp_path / "expected.jsonl").read_bytes()
    out = tmp_path / "s.jsonl"
    for pause in ("split", "partition 3", "join"):  # mid-split, after some partitions, mid-join
        proc = _extract_process(path, out, pause)
        assert proc.stderr.readline().strip() == f"paused at {pause}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not out.exists() and (tmp_path / "s.jsonl.work").exists()
    assert run([path], out).read_bytes() == expected  # the rerun takes up what the killed runs left


def test_named_bots_end_paths_like_deleted_comments(dump, tmp_path):
    path, records = dump
    got = sessions(run([path], tmp_path / "s.jsonl", skip_authors=("user1", "user2")))
    assert Counter(map(tuple, got)) == Counter(map(tuple, reference_sessions(records, ("user1", "user2"))))


def test_a_rerun_with_other_settings_starts_afresh(dump, tmp_path):
    path, records = dump
    out = tmp_path / "s.jsonl"
    (tmp_path / "s.jsonl.work" / "sessions").mkdir(parents=True)  # left by a killed run with other settings
    (tmp_path / "s.jsonl.work" / "manifest.json").write_text('{"part": "2/2"}')
    (tmp_path / "s.jsonl.work" / "sessions" / "p00000.jsonl").write_text('["stale", "session"]\n')
    got = sessions(run([path], out))
    assert Counter(map(tuple, got)) == Counter(map(tuple, reference_sessions(records)))


def test_the_command_reports_bad_input_on_one_line(tmp_path):
    from tests.cli.test_cli import assert_clean_error

    path = tmp_path / "RC.jsonl"
    path.write_text('{"id": "a", "title": "t"}\n{"id": "c", "parent_id": "t3_a"}\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["dialogue", "extract", "--input", str(path), "--out", str(tmp_path / "s.jsonl"),
                                      "--quiet"])
    assert_clean_error(result, "RC.jsonl:2: field link_id")
    result = CliRunner().invoke(cli, ["dialogue", "extract", "--input", str(path), "--out", "x", "--part", "3/2"])
    assert_clean_error(result, "--part must be I/N")


def _split_one(dump: Path, into: Path, cfg: ExtractConfig) -> Path:
    split([dump], cfg, 1, into, progress=False)
    return into / "p00000.jsonl"


def _build_peak(partition: Path, out: Path, cfg: ExtractConfig) -> int:
    tracemalloc.start()
    try:
        build(partition, out, [], cfg)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_build_step_holds_the_threads_places_not_their_texts(tmp_path):
    records = generate(300, seed=3)
    longer = [{**r, "body": " ".join([r["body"]] * 30)} if r.get("body", "[deleted]")[0] != "[" else r
              for r in records]  # the same threads, each comment 30 times as long
    peaks = []
    for name, recs in (("short", records), ("long", longer)):
        cfg = ExtractConfig([], str(tmp_path / f"{name}.jsonl"), None)
        partition = _split_one(write(tmp_path / f"{name}_dump.jsonl", recs), tmp_path / name, cfg)
        peaks.append(_build_peak(partition, tmp_path / name / "sessions.jsonl", cfg))
    assert peaks[1] < 1.25 * peaks[0], peaks
    assert sum(len(r.get("body", "")) for r in longer) > 4 * peaks[1]  # its texts were never all held


def test_threads_sharing_a_hash_are_built_in_memory_with_the_same_result(dump, tmp_path):
    path, _ = dump
    cfg = ExtractConfig([], str(tmp_path / "s.jsonl"), None)
    partition = _split_one(path, tmp_path / "split", cfg)
    build(partition, tmp_path / "grouped.jsonl", [], cfg)
    index = tmp_path / "split" / "i00000.bin"
    np.zeros(index.stat().st_size // 8, dtype="<u8").tofile(index)  # every thread the same hash
    build(partition, tmp_path / "shared.jsonl", [], cfg)
    assert (tmp_path / "shared.jsonl").read_bytes() == (tmp_path / "grouped.jsonl").read_bytes()
    assert len(sessions(tmp_path / "shared.jsonl")) > 150


@pytest.mark.parametrize("alphabet, longest", [("ab", 5), ("aé€😀z", 9), ("xyzÿĀ", 70), ("a\x00b", 4)])
def test_thread_ids_are_ordered_as_python_sorts_them(alphabet, longest):
    rng = random.Random(len(alphabet))
    links = list({"".join(rng.choices(alphabet, k=rng.randint(0, longest))) for _ in range(300)})
    assert [links[i] for i in by_id(links, len(links))] == sorted(links)
