"""Exact and near-duplicate removal, in stages whose shuffle is files on disk (as datatrove runs it):

1. sign (one process per ``--part I/N``, on any machine that sees the corpus and DIR): each
   document's MinHash signature (gptkit.corpus.minhash) is cut into band keys, and its normalized
   text (gptkit.corpus.text.clean) hashed to an exact key. Every CHUNK documents, each band's
   (key, document) entries are sorted and written: DIR/.dedup/sign-part-I-of-N/chunk-*.bin.
2. buckets (the merge, one process): each band's runs from every part are merged in key order a
   block at a time (gptkit.corpus.shuffle); documents sharing a key are candidate pairs.
3. verify: the candidates' word 5-gram sets are computed again (one pass over the corpus that parses
   only them) and a pair is a near duplicate when their Jaccard similarity is at least
   ``threshold``, an exact duplicate when the exact keys and the sets are equal. The estimate
   MinHash gives is never trusted alone: the candidates are checked against the true similarity of
   the hashed shingle sets.
4. clusters: the verified pairs' connected components; the first document of each, in input
   order, is kept, every other one removed (its reason: exact if an earlier document has the same
   normalized text, near otherwise).
5. write: one pass over the corpus appends every kept record, as it came in, to DIR (gptkit.corpus.step).

Nothing holds the corpus: signing keeps CHUNK documents' keys, the merge a fixed buffer of entries;
the candidates, verified pairs and removed documents are held as numpy arrays (about a hundred
bytes for each duplicate, nothing for a document that has none). Every stage records what it finished, so a
run started again goes on from the last finished chunk or stage. All of it is a fixed function of
the inputs and settings: N parts and a merge give exactly the files of one part.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from array import array
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gptkit.corpus.minhash import LSH, band_keys, shingles, signatures
from gptkit.corpus.records import batches, read_records
from gptkit.corpus.shuffle import ENTRY, Run, group_pairs, merge, sort_entries
from gptkit.corpus.step import base_report, part_name, run_step, settings_key, write_report
from gptkit.corpus.text import clean_bytes
from gptkit.data.plan import Plan
from gptkit.errors import GptkitError
from gptkit.io import atomic_path, read_json, write_text

CHUNK = 8192  # documents signed between two sorted runs
WORK = ".dedup"
REMOVED = np.dtype([("doc", "<u8"), ("keeper", "<u8"), ("exact", "?")])


@dataclass(frozen=True)
class Settings:
    threshold: float = 0.8
    ngram: int = 5
    bands: int = 20
    rows: int = 5
    seed: int = 0

    @property
    def lsh(self) -> LSH:
        return LSH(self.bands, self.rows, self.ngram, self.seed)

    def check(self) -> None:
        if not 0 < self.threshold <= 1:
            raise GptkitError(f"--threshold must be in (0, 1], got {self.threshold}")
        for name in ("ngram", "bands", "rows"):
            if getattr(self, name) < 1:
                raise GptkitError(f"--{name} must be at least 1, got {getattr(self, name)}")


def exact_keys(cleaned: list[bytes]) -> np.ndarray:
    """64 bits of the BLAKE2b hash of each normalized text (``clean_bytes``)."""
    return np.array([int.from_bytes(hashlib.blake2b(c, digest_size=8).digest(), "little") for c in cleaned],
                    dtype=np.uint64)


# --- 1. sign ---------------------------------------------------------------------------------------

def sign(plan: Plan, part: tuple[int, int], out: Path, settings: Settings, progress=None) -> dict:
    """Sign the plan's part; resumable by chunk. The part's state (its chunks)."""
    folder = out / WORK / f"sign-{part_name(part)}"
    folder.mkdir(parents=True, exist_ok=True)
    state_path = folder / "state.json"
    key = settings_key(plan, "dedup-sign", asdict(settings))
    state = read_json(state_path) if state_path.is_file() else None
    if state is None or state.get("key") != key:
        for stale in folder.glob("chunk-*.bin"):
            stale.unlink()
        state = {"key": key, "settings": asdict(settings), "lo": plan.lo, "hi": plan.hi, "next": plan.lo, "chunks": [],
                 "documents": 0, "chars": 0, "seconds": 0.0, "done": False, "files_digest": plan.files_digest}
    if state["done"]:
        return state
    lsh = settings.lsh
    a, b = lsh.parameters()
    started, base = time.perf_counter(), state["seconds"]
    buffers: list[list[np.ndarray]] = [[] for _ in range(lsh.bands + 1)]
    docs: list[list[np.ndarray]] = [[] for _ in range(lsh.bands + 1)]
    buffered = buffered_chars = 0

    def flush() -> None:
        nonlocal buffered, buffered_chars, buffers, docs
        name = f"chunk-{len(state['chunks']):05d}.bin"
        counts = []
        with atomic_path(folder / name) as tmp, open(tmp, "wb") as f:
            for band in range(lsh.bands + 1):
                k = np.concatenate(buffers[band]) if buffers[band] else np.zeros(0, dtype=np.uint64)
                d = np.concatenate(docs[band]) if docs[band] else np.zeros(0, dtype=np.uint64)
                sort_entries(k, d).tofile(f)
                counts.append(len(k))
        state["chunks"].append({"file": name, "counts": counts})
        state["next"] += buffered
        state["documents"] += buffered
        state["chars"] += buffered_chars
        state["seconds"] = base + time.perf_counter() - started
        write_text(state_path, json.dumps(state))
        buffers = [[] for _ in range(lsh.bands + 1)]
        docs = [[] for _ in range(lsh.bands + 1)]
        buffered = buffered_chars = 0

    for batch in batches(read_records(plan, state["next"])):
        texts = [r.text for r in batch]
        index = np.array([r.index for r in batch], dtype=np.uint64)
        cleaned = [clean_bytes(t) for t in texts]
        s, per_doc = shingles(texts, settings.ngram, cleaned)
        keys = band_keys(signatures(s, per_doc, a, b), lsh)
        has = per_doc > 0  # a document without words has no signature: only its exact key counts
        for band in range(lsh.bands):
            buffers[band].append(keys[band][has])
            docs[band].append(index[has])
        buffers[lsh.bands].append(exact_keys(cleaned))
        docs[lsh.bands].append(index)
        buffered += len(batch)
        chars = sum(map(len, texts))
        buffered_chars += chars
        if progress is not None:
            progress(len(batch), chars)
        if buffered >= CHUNK:
            flush()
    if buffered:
        flush()
    state["done"] = True
    state["seconds"] = base + time.perf_counter() - started
    write_text(state_path, json.dumps(state))
    return state


# --- 2-5. the merge --------------------------------------------------------------------------------

def signed_parts(out: Path, plan: Plan, settings: Settings, parts: int | None = None) -> list[tuple[Path, dict]]:
    """Every part's folder and state, checked: all signed, with these settings, covering the corpus.
    ``parts``: how many; by default those of the part signed last (a DIR may hold an older run's)."""
    folders = sorted((out / WORK).glob("sign-part-*"))
    if not folders:
        raise GptkitError(f"{out} holds no signed parts: run `gptkit corpus dedup --part I/N` for every part first "
                          "(or without --part for the whole corpus)")
    if parts is None:
        latest = max(folders, key=lambda f: (f / "state.json").stat().st_mtime if (f / "state.json").is_file() else 0)
        parts = int(latest.name.rsplit("-of-", 1)[1])
    n = parts
    states = []
    for i in range(1, n + 1):
        folder = out / WORK / f"sign-{part_name((i, n))}"
        state = read_json(folder / "state.json") if (folder / "state.json").is_file() else None
        if state is None or not state["done"]:
            raise GptkitError(f"part {i}/{n} is not signed yet: run `gptkit corpus dedup ... --part {i}/{n}` (the same "
                              "inputs and settings), then --merge again")
        if state["settings"] != asdict(settings) or state["files_digest"] != plan.files_digest:
            raise GptkitError(f"part {i}/{n} was signed with other inputs or settings ({state['settings']}); sign it again "
                              "with the merge's")
        states.append((folder, state))
    edges = [(s["lo"], s["hi"]) for _, s in states]
    if edges[0][0] != 0 or edges[-1][1] != plan.hi or any(x[1] != y[0] for x, y in zip(edges, edges[1:])):
        raise GptkitError(f"the signed parts cover documents {edges}, not 0 to {plan.hi} of the inputs: were the "
                          "inputs changed? sign every part again")
    return states


def _runs(states: list[tuple[Path, dict]], band: int) -> list[Run]:
    runs = []
    for folder, state in states:
        for chunk in state["chunks"]:
            offset = sum(chunk["counts"][:band]) * ENTRY.itemsize
            runs.append(Run(folder / chunk["file"], offset, chunk["counts"][band]))
    return runs


def _write_pairs(path: Path, runs: list[Run]) -> int:
    n = 0
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        for entries in merge(runs):
            a, b = group_pairs(entries)
            np.stack((a, b), axis=1).astype(np.uint64).tofile(f)
            n += len(a)
    return n


def _read_pairs(path: Path) -> np.ndarray:
    return np.fromfile(path, dtype=np.uint64).reshape(-1, 2)


class ShingleSets:
    """The sorted, distinct shingle hashes of the candidate documents, on disk, read one at a time."""

    def __init__(self, folder: Path):
        index = np.load(folder / "sets-index.npy")
        self.docs, self.offsets = index[0], index[1]
        self.fd = os.open(folder / "sets.bin", os.O_RDONLY)

    def get(self, doc: int) -> np.ndarray:
        i = int(np.searchsorted(self.docs, np.uint64(doc)))
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        return np.frombuffer(os.pread(self.fd, (hi - lo) * 8, lo * 8), dtype=np.uint64)

    def close(self) -> None:
        os.close(self.fd)


def _write_sets(plan: Plan, folder: Path, candidates: np.ndarray, ngram: int, progress=None) -> None:
    """One pass over the corpus, parsing only the candidates: their shingle sets to sets.bin."""
    pointer = [0]

    def wanted(index: int) -> bool:
        while pointer[0] < len(candidates) and candidates[pointer[0]] < index:
            pointer[0] += 1
        return pointer[0] < len(candidates) and candidates[pointer[0]] == index

    offsets, docs, at = array("Q", [0]), array("Q"), 0
    with atomic_path(folder / "sets.bin") as tmp, open(tmp, "wb") as f:
        for batch in batches(read_records(plan, plan.lo, wanted)):
            parsed = [r for r in batch if r is not None]  # parquet and text records come parsed, wanted or not
            at_ = np.searchsorted(candidates, np.array([r.index for r in parsed], dtype=np.uint64))
            records = [r for r, i in zip(parsed, at_) if i < len(candidates) and candidates[i] == r.index]
            if progress is not None:
                progress(len(batch), sum(len(r.text) for r in records))
            if not records:
                continue
            s, per_doc = shingles([r.text for r in records], ngram)
            start = 0
            for record, n in zip(records, per_doc):
                unique = np.unique(s[start: start + n])
                start += n
                unique.tofile(f)
                at += len(unique)
                docs.append(record.index)
                offsets.append(at)
    index = np.zeros((2, len(docs) + 1), dtype=np.uint64)
    index[0, : len(docs)] = np.frombuffer(docs, dtype=np.uint64) if len(docs) else 0
    index[0, len(docs)] = np.iinfo(np.uint64).max
    index[1] = np.frombuffer(offsets, dtype=np.uint64)
    with atomic_path(folder / "sets-index.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, index)


def _verify(pairs: np.ndarray, sets: ShingleSets, threshold: float, exact: bool) -> tuple[np.ndarray, np.ndarray]:
    """(the pairs that are duplicates, their similarity)."""
    keep, similarity = np.zeros(len(pairs), dtype=bool), np.zeros(len(pairs), dtype=np.float32)
    cached_doc, cached = None, None
    for i, (a, b) in enumerate(pairs.tolist()):
        if a != cached_doc:
            cached_doc, cached = a, sets.get(a)
        other = sets.get(b)
        if exact:
            same = len(cached) == len(other) and bool(np.array_equal(cached, other))
            keep[i], similarity[i] = same, 1.0 if same else 0.0
            continue
        union = len(cached) + len(other)
        shared = len(np.intersect1d(cached, other, assume_unique=True)) if union else 0
        j = shared / (union - shared) if union - shared else 1.0
        keep[i], similarity[i] = j >= threshold, j
    return pairs[keep], similarity[keep]


def components(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, the smallest node of each node's connected component) of the graph of edges (a, b)."""
    nodes = np.unique(np.concatenate((a, b)))
    ia, ib = np.searchsorted(nodes, a), np.searchsorted(nodes, b)
    label = np.arange(len(nodes))
    while True:
        smallest = np.minimum(label[ia], label[ib])
        new = label.copy()
        np.minimum.at(new, ia, smallest)
        np.minimum.at(new, ib, smallest)
        new = new[new]  # jump to the label's label (a smaller node of the same component)
        if np.array_equal(new, label):
            return nodes, nodes[label]
        label = new


def merge_parts(plan: Plan, out: Path, settings: Settings, compression: str = "none", progress=None,
                stage_note=None, parts: int | None = None) -> dict:
    """Stages 2-5 over every signed part (of ``parts``; by default the last signed run's); resumable
    by stage. The report."""
    states = signed_parts(out, plan, settings, parts)
    folder = out / WORK / "merge"
    folder.mkdir(parents=True, exist_ok=True)
    state_path = folder / "state.json"
    key = hashlib.sha256(json.dumps([s["key"] for _, s in states] + [asdict(settings)]).encode()).hexdigest()[:32]
    state = read_json(state_path) if state_path.is_file() else None
    if state is None or state.get("key") != key:
        for stale in folder.iterdir():
            stale.unlink()
        state = {"key": key, "stages": {}, "seconds": {}}
    stages, bands = state["stages"], settings.bands + 1

    def finish(stage: str, started: float, **values) -> None:
        stages[stage] = values
        state["seconds"][stage] = round(time.perf_counter() - started, 3)
        write_text(state_path, json.dumps(state))

    note = stage_note or (lambda _stage: None)
    if "buckets" not in stages:
        note("buckets")
        started, pairs = time.perf_counter(), []
        for band in range(bands):
            pairs.append(_write_pairs(folder / f"pairs-{band:03d}.bin", _runs(states, band)))
        finish("buckets", started, candidate_pairs=sum(pairs[:-1]), exact_pairs=pairs[-1])

    if "verify" not in stages:
        note("verify")
        started = time.perf_counter()
        near = np.zeros((0, 2), dtype=np.uint64)
        for band in range(bands - 1):  # a pair found in several bands is verified once; one band in memory at a time
            near = np.unique(np.concatenate((near, _read_pairs(folder / f"pairs-{band:03d}.bin"))), axis=0)
        exact = _read_pairs(folder / f"pairs-{bands - 1:03d}.bin")
        candidates = np.unique(np.concatenate((near.ravel(), exact.ravel())))
        _write_sets(plan, folder, candidates, settings.ngram, progress)
        sets = ShingleSets(folder)
        try:
            near_ok, near_sim = _verify(near, sets, settings.threshold, exact=False)
            exact_ok, _ = _verify(exact, sets, settings.threshold, exact=True)
        finally:
            sets.close()
        np.save(folder / "near.npy", near_ok)
        np.save(folder / "near-similarity.npy", near_sim)
        np.save(folder / "exact.npy", exact_ok)
        finish("verify", started, candidate_documents=int(len(candidates)), distinct_candidate_pairs=int(len(near)),
               verified_near_pairs=int(len(near_ok)), verified_exact_pairs=int(len(exact_ok)))

    if "clusters" not in stages:
        note("clusters")
        started = time.perf_counter()
        near_ok, exact_ok = np.load(folder / "near.npy"), np.load(folder / "exact.npy")
        edges = np.concatenate((near_ok, exact_ok))
        removed = np.zeros(0, dtype=REMOVED)
        clusters = 0
        if len(edges):
            nodes, keeper = components(edges[:, 0], edges[:, 1])
            clusters = int(len(np.unique(keeper)))
            gone = nodes != keeper
            removed = np.zeros(int(gone.sum()), dtype=REMOVED)
            removed["doc"], removed["keeper"] = nodes[gone], keeper[gone]
            removed["exact"] = np.isin(removed["doc"], exact_ok[:, 1])
        with atomic_path(folder / "removed.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, removed)
        finish("clusters", started, clusters=clusters, removed=int(len(removed)),
               exact=int(removed["exact"].sum()), near=int((~removed["exact"]).sum()))

    note("write")
    removed = np.load(folder / "removed.npy")
    reasons = {}
    pointer = [0]

    def decide(batch):
        verdicts = []
        for record in batch:
            while pointer[0] < len(removed) and removed["doc"][pointer[0]] < record.index:
                pointer[0] += 1
            hit = pointer[0] < len(removed) and removed["doc"][pointer[0]] == record.index
            verdicts.append(("exact duplicate" if removed["exact"][pointer[0]] else "near duplicate") if hit else None)
        return verdicts

    started = time.perf_counter()
    output, counts = run_step("dedup", plan, (1, 1), out, decide, {"merge": key}, compression, extra=reasons,
                              progress=progress)
    state["seconds"].setdefault("write", round(time.perf_counter() - started, 3))
    write_text(state_path, json.dumps(state))
    return _report(plan, out, settings, states, state, counts, output, removed, folder)


def _report(plan, out, settings, states, state, counts, output, removed, folder) -> dict:
    near_ok = np.load(folder / "near.npy")
    near_sim = np.load(folder / "near-similarity.npy")
    examples = []
    for row in removed[:20]:
        example = {"document": int(row["doc"]), "kept_document": int(row["keeper"]), "exact": bool(row["exact"])}
        match = np.flatnonzero(near_ok[:, 1] == row["doc"])
        if len(match):
            example["jaccard"] = round(float(near_sim[match].max()), 4)
        examples.append(example)
    sign_seconds = [s["seconds"] for _, s in states]
    counts.extra = {**state["stages"].get("buckets", {}), **state["stages"].get("verify", {}),
                    **state["stages"].get("clusters", {}), "examples": examples,
                    "stage_seconds": {"sign (slowest part)": round(max(sign_seconds), 3), **state["seconds"]},
                    "parts": len(states)}
    counts.seconds = max(sign_seconds) + sum(state["seconds"].values())  # the parts run side by side
    report = base_report("dedup", plan, (1, 1), {**asdict(settings), "shingles": f"word {settings.ngram}-grams"}, counts,
                         [output.name])
    write_report(out, "dedup", (1, 1), report)
    return report


def dedup_files(inputs: list[str], out: str | Path, settings: Settings = Settings(), part: str | None = None,
                merge_only: bool = False, text_field: str = "text", compression: str = "none", progress=None,
                stage_note=None) -> dict:
    """`gptkit corpus dedup`: with ``part`` "I/N" (N > 1), sign that part and stop (the state of the
    part); with ``merge_only``, merge the signed parts and write; else both for the whole corpus
    (the report)."""
    from gptkit.corpus.step import check_out, part_lock, plan_for

    settings.check()
    if merge_only and part not in (None, "1/1"):
        raise GptkitError("--merge reads every signed part: give it without --part")
    plan, index = plan_for(inputs, text_field, part or "1/1")
    out = check_out(out, "dedup", inputs, 1)
    if index[1] > 1:
        with part_lock(out, f"sign-{part_name(index)}"):
            return sign(plan, index, out, settings, progress)
    with part_lock(out, "merge"):
        if not merge_only:
            with part_lock(out, f"sign-{part_name(index)}"):
                if (stage_note is not None):
                    stage_note("sign")
                sign(plan, index, out, settings, progress)
        return merge_parts(plan, out, settings, compression, progress, stage_note, None if merge_only else 1)
