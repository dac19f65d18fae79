"""Reddit-style dumps -> DialoGPT sessions: every root-to-leaf path of every thread's comment tree,
the submission's title first, one JSON list of turns a line.

Real dumps are newline-delimited JSON (plain, .zst, .gz or .bz2) in which a thread's comments are
scattered over the file (and over files), so the work is done in three resumable stages under
``<out>.work/``, with memory bounded by a partition, not by the dump:

1. split: every record is written, compacted, to one of P partition files by a hash of its thread
   (link_id), that hash to the partition's index (one a record, in the file's order), and every
   response's hash to one of P count buckets (the repeated-response filter counts the whole dump);
   the stage's directory appears whole (a rename) or not at all;
2. build: each partition's records are grouped by thread from its index (memory holds where each
   record is, about 8 bytes a record and 24 a thread, 20 a record while sorting; not the texts),
   then each thread in turn is read back by offset, becomes a tree and gives its sessions, written
   to a file of its own (renamed into place when done, so a rerun skips finished partitions);
3. join: the partitions' sessions, in partition order, are copied into ``out`` (renamed into place).

A SIGKILL at any point and a rerun give the same bytes. ``--part I/N`` keeps the threads whose hash
falls in the I-th of N classes, so N machines extract disjoint parts of the same dump.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
from array import array
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gptkit.chat.filters import Check, FilterConfig, FilterReport, rejection, response_key, turn_checks
from gptkit.data.documents import _SURROGATE, expect, input_files, iter_jsonl, text_lines
from gptkit.data.plan import parse_part
from gptkit.errors import GptkitError

DELETED = frozenset({"[deleted]", "[removed]", ""})
COMPRESSION_RATIO = {".zst": 8, ".gz": 5, ".bz2": 6, ".xz": 6}  # a guess of the text's size, for P
MAX_PARTITIONS = 256  # files open at once while splitting, twice this with the count buckets
FLUSH = 1024  # hashes held a partition while splitting before they go to its file (8 KB, as its buffer)
LAYOUT = 2  # of the work directory: a work directory of another layout is started afresh
# Report lines for what the tree itself removes, before the content filters.
GONE, BOT, ORPHAN = "deleted or removed", "author skipped (--skip-author)", "parent not in the dump"
NO_TITLE, NO_REPLY = "submission not in the dump", "no reply left"

# A compact record in a partition file: [thread, id, parent, author, text, created]; the submission
# has parent None and its title as text, a top-level comment has parent "".
Record = list
_encode = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(..., ensure_ascii=False), made once


@dataclass
class ExtractConfig:
    inputs: list[str]
    out: str
    filters: FilterConfig | None = field(default_factory=FilterConfig)  # None: --no-filters
    skip_authors: tuple[str, ...] = ("AutoModerator",)
    part: str = "1/1"
    partition_bytes: int = 32 << 20  # dump text per partition: what one build step holds in memory

    @property
    def work(self) -> Path:
        return Path(self.out + ".work")


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def _thread_id(value: str) -> str:
    return value[3:] if value[:3] in ("t3_", "t1_") else value


def _text(value: object) -> str:
    """A string field as UTF-8 can hold it (a lone "\\ud83d" escape becomes U+FFFD); else ""."""
    if not isinstance(value, str):
        return ""
    return value if value.isascii() else _SURROGATE.sub("\ufffd", value)


def parse_record(obj: object, where: str) -> Record:
    """A dump line as a compact record; a line that is neither a comment nor a submission, or lacks
    a field, is an error naming the file and line."""
    if not isinstance(obj, dict):
        raise GptkitError(f"{where}: each line must be a JSON object (a Reddit comment or submission)")
    cid = _text(str(expect(obj.get("id"), "a non-empty string or a whole number", f"{where}: field id")))
    author = _text(obj.get("author"))
    created = obj.get("created_utc", 0)
    try:
        created = float(created or 0)
    except (TypeError, ValueError):
        raise GptkitError(f"{where}: field created_utc must be a number of seconds, got {created!r}") from None
    if "parent_id" in obj:
        parent = _text(expect(obj["parent_id"], "a non-empty string", f"{where}: field parent_id"))
        link = _text(expect(obj.get("link_id"), "a non-empty string", f"{where}: field link_id (a comment's thread)"))
        return [_thread_id(link), cid, "" if parent.startswith("t3_") else _thread_id(parent), author,
                _text(obj.get("body")), created]
    if "title" in obj:
        return [cid, cid, None, author, _text(obj["title"]), created]
    raise GptkitError(f"{where}: neither a comment (no parent_id) nor a submission (no title); "
                      "give Reddit comments and submissions as JSON lines")


def partition_count(files: list[Path], parts: int, partition_bytes: int) -> int:
    """P, so that each partition holds about ``partition_bytes`` of dump text."""
    size = sum(p.stat().st_size * COMPRESSION_RATIO.get(p.suffix.lower(), 1) for p in files)
    return max(1, min(MAX_PARTITIONS, math.ceil(size / parts / partition_bytes)))


def _pause_point(point: str) -> None:
    """Where a test stops a real run (GPTKIT_PAUSE_AT=point) to SIGKILL it at a known stage."""
    if os.environ.get("GPTKIT_PAUSE_AT") == point:
        print(f"paused at {point}", file=sys.stderr, flush=True)
        sys.stdin.readline()


# --- 1. split ------------------------------------------------------------------------------------

def split(files: list[Path], cfg: ExtractConfig, partitions: int, into: Path, progress: bool) -> None:
    """Partition files p*.jsonl (this part's records), their indexes i*.bin (each record's thread hash,
    in the file's order) and count buckets c*.bin (every response's hash), then frequent.npy: the
    hashes of responses seen more than the limit, in the whole dump."""
    index, parts = parse_part(cfg.part)
    into.mkdir(parents=True)
    outs = [open(into / f"p{i:05d}.jsonl", "wb") for i in range(partitions)]
    buckets = [open(into / f"c{i:05d}.bin", "wb") for i in range(partitions)]
    pending = [array("Q") for _ in range(partitions)]
    threads = [array("Q") for _ in range(partitions)]  # the index, appended to its file every FLUSH
    compressed = any(p.suffix.lower() in COMPRESSION_RATIO for p in files)
    bar = tqdm(total=None if compressed else sum(p.stat().st_size for p in files), unit="B", unit_scale=True,
               desc="splitting threads", disable=not progress)
    try:
        for n, path in enumerate(files):
            for line_no, obj in iter_jsonl(_counted(text_lines(path), bar), str(path)):
                record = parse_record(obj, f"{path}:{line_no}")
                if record[2] is not None and record[4].strip() not in DELETED:
                    key = _hash(response_key(record[4]))
                    q = key % partitions
                    pending[q].append(key)
                    if len(pending[q]) >= FLUSH:
                        pending[q].tofile(buckets[q])
                        del pending[q][:]
                h = _hash(record[0])
                if h % parts == index - 1:
                    p = (h // parts) % partitions
                    outs[p].write((_encode(record) + "\n").encode("utf-8"))
                    threads[p].append(h)
                    if len(threads[p]) >= FLUSH:
                        _append(threads[p], into / f"i{p:05d}.bin")
            if n == 0:
                _pause_point("split")
        for bucket, keys in zip(buckets, pending):
            keys.tofile(bucket)
        for p, hashes in enumerate(threads):
            _append(hashes, into / f"i{p:05d}.bin")
    finally:
        bar.close()
        for f in (*outs, *buckets):
            f.close()
    limit = cfg.filters.max_response_count if cfg.filters else None
    buckets = [into / f"c{i:05d}.bin" for i in range(partitions)] if limit is not None else []
    np.save(into / "frequent.npy", _frequent(buckets, limit))


def _append(values: array, path: Path) -> None:
    with open(path, "ab") as f:
        values.tofile(f)
    del values[:]


def _counted(lines: Iterator[str], bar: tqdm) -> Iterator[str]:
    for line in lines:
        bar.update(len(line))
        yield line


def _frequent(buckets: list[Path], limit: int) -> np.ndarray:
    """The keys seen more than ``limit`` times, sorted: a run past ``limit`` in each bucket sorted in
    place, in one buffer for all (no copies of a bucket, nor counts of every key)."""
    sizes = [bucket.stat().st_size // 8 for bucket in buckets]
    buffer, found = np.empty(max(sizes, default=0), dtype="<u8"), []
    for bucket, size in zip(buckets, sizes):
        keys = buffer[:size]
        with open(bucket, "rb") as f:
            f.readinto(keys)
        keys.sort()
        found.append(np.unique(keys[limit:][keys[limit:] == keys[:-limit]] if limit > 0 else keys))
    return np.concatenate(found) if found else np.zeros(0, dtype="<u8")


# --- 2. build ------------------------------------------------------------------------------------

@dataclass
class Thread:
    title: str | None = None
    nodes: dict[str, tuple[str, str, str, float]] = field(default_factory=dict)  # id -> parent, author, text, created


def read_threads(lines: Iterable[bytes]) -> dict[str, Thread]:
    """The threads of partition lines given in the file's order."""
    threads: dict[str, Thread] = defaultdict(Thread)
    for line in lines:
        link, cid, parent, author, text, created = json.loads(line)
        thread = threads[link]
        if parent is None:
            if thread.title is None:
                thread.title = " ".join(text.split())
        elif cid not in thread.nodes:  # a comment twice in the dump: the first copy
            thread.nodes[cid] = (parent, author, " ".join(text.split()), created)
    return threads


class SharedHash(Exception):
    """Two threads of a partition have the same 64-bit hash (a chance of about 3 in 10^8 for a
    million threads): its index cannot group them, so the partition is built in memory."""


def line_ends(path: Path, lines: int, chunk: int = 1 << 16) -> np.ndarray:
    """The offset just past each of the file's ``lines`` newlines (JSON lines hold no raw newline),
    in 4 bytes each where the file is under 4 GiB."""
    ends = np.empty(lines, dtype=np.uint32 if path.stat().st_size < 1 << 32 else np.uint64)
    done, found = 0, 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            at = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
            if found + len(at) > lines:
                break
            ends[found:found + len(at)] = at + (done + 1)
            done, found = done + len(block), found + len(at)
    if found != lines:
        raise GptkitError(f"{path} does not match its index: delete {path.parent.parent} and run again")
    return ends


def by_id(links: Iterable[str], count: int, most: int = 64) -> np.ndarray:
    """The order that sorts ``count`` distinct links as ``sorted`` would. They are held as UTF-8 bytes
    (which sort as their code points do) in a fixed-width array while each is at most ``most`` bytes
    and holds no NUL (numpy's padding), else as Python strings."""
    links, packed = iter(links), np.zeros(count, dtype="S16")
    for k, link in enumerate(links):
        raw = link.encode("utf-8")
        if len(raw) > packed.itemsize or b"\0" in raw:
            if len(raw) > most or b"\0" in raw:
                held = [b.decode("utf-8") for b in packed[:k].tolist()]
                return np.argsort(np.array([*held, link, *links], dtype=object), kind="stable")
            packed = packed.astype(f"S{max(len(raw), min(2 * packed.itemsize, most))}")
        packed[k] = raw
    return np.argsort(packed, kind="stable")


def iter_threads(partition: Path, chunk: int = 1 << 16) -> Iterator[Thread]:
    """A partition's threads in id order, each read back from the file when its turn comes: what
    is held throughout is where each record is (about 8 bytes a record), not the texts."""
    hashes = np.fromfile(partition.with_name("i" + partition.name[1:]).with_suffix(".bin"), dtype="<u8")
    order = np.argsort(hashes, kind="stable")  # by thread, each thread's records in the file's order
    first = np.ones(len(hashes) + 1, dtype=bool)  # where each thread's records start in ``order``, and the end
    for lo in range(0, len(hashes), chunk):  # a chunk at a time: no sorted copy of the hashes
        h = hashes[order[lo:lo + chunk + 1]]
        first[lo + 1:lo + len(h)] = h[1:] != h[:-1]
    del hashes
    bounds = np.flatnonzero(first)
    del first
    order = order.astype(np.uint32) if len(order) < 1 << 32 else order
    ends = line_ends(partition, len(order))
    fd = os.open(partition, os.O_RDONLY)
    try:
        def lines(lo: int, hi: int) -> Iterator[bytes]:
            for i in order[lo:hi].tolist():
                start = int(ends[i - 1]) if i else 0
                yield os.pread(fd, int(ends[i]) - start, start)

        links = (json.decoder.scanstring(next(lines(lo, lo + 1)).decode("utf-8"), 2)[0]  # a line is ["link", ...
                 for lo in bounds[:-1])
        groups = by_id(links, len(bounds) - 1)
        for g in groups:
            threads = read_threads(lines(int(bounds[g]), int(bounds[g + 1])))
            if len(threads) != 1:
                raise SharedHash
            yield from threads.values()
    finally:
        os.close(fd)


class TreeBuilder:
    """One thread's sessions and what each filter removed from it."""

    def __init__(self, checks: list[Check], skip_authors: frozenset[str], report: FilterReport):
        self.checks, self.skip_authors, self.report = checks, skip_authors, report

    def reason(self, author: str, text: str) -> str | None:
        if text in DELETED:
            return GONE
        if author in self.skip_authors:
            return BOT
        return rejection(text, True, self.checks)

    def sessions(self, thread: Thread) -> Iterator[list[str]]:
        children: dict[str, list[str]] = defaultdict(list)
        for cid, (parent, *_rest) in thread.nodes.items():
            children[parent].append(cid)
        for kids in children.values():
            kids.sort(key=lambda c: (thread.nodes[c][3], c))
        if thread.title is None:
            self.report.count(NO_TITLE, threads=1, turns=len(thread.nodes))
            return
        title_cut = GONE if thread.title in DELETED else rejection(thread.title, False, self.checks)
        if title_cut:
            turns, leaves = _subtree(children, "")
            self.report.count(title_cut, threads=1, sessions=leaves, turns=turns + 1)
            return
        reasons: dict[str, str | None] = {}

        def cut(cid: str) -> str | None:  # judged when first needed: turns under a cut one never are
            if cid not in reasons:
                reasons[cid] = self.reason(thread.nodes[cid][1], thread.nodes[cid][2])
            return reasons[cid]

        reached, written = 0, 0
        stack, path = [(c, 1) for c in reversed(children[""])], [thread.title]
        while stack:
            cid, depth = stack.pop()
            if cut(cid):
                turns, leaves = _subtree(children, cid)
                self.report.count(cut(cid), sessions=leaves, turns=turns + 1)
                reached += turns + 1
                continue
            reached += 1
            del path[depth:]
            path.append(thread.nodes[cid][2])
            kids = children.get(cid, [])
            if not any(cut(k) is None for k in kids):
                written += 1
                self.report.turns += len(path)
                yield path[:]
            stack.extend((k, depth + 1) for k in reversed(kids))
        if reached < len(thread.nodes):
            self.report.count(ORPHAN, turns=len(thread.nodes) - reached)
        if not written:
            first = next((cut(c) for c in children[""] if cut(c)), None)
            self.report.count(first or NO_REPLY, threads=1)
        self.report.sessions += written
        self.report.kept += written


def _subtree(children: dict[str, list[str]], root: str) -> tuple[int, int]:
    """(nodes below ``root``, root-to-leaf paths through it): what cutting it removes."""
    nodes, leaves, stack = 0, 0, list(children.get(root, []))
    while stack:
        cid = stack.pop()
        nodes += 1
        kids = children.get(cid, [])
        leaves += not kids
        stack.extend(kids)
    return nodes, max(leaves, 1)


def build(partition: Path, out: Path, checks: list[Check], cfg: ExtractConfig) -> None:
    """One partition's sessions (threads in id order, children by time) and its report, each
    renamed into place: the sessions file last, as the mark that the partition is done."""
    tmp = out.with_suffix(".tmp")
    try:
        report = write_sessions(iter_threads(partition), tmp, checks, cfg)
    except SharedHash:
        with open(partition, "rb") as f:
            threads = read_threads(f)
        report = write_sessions((threads[link] for link in sorted(threads)), tmp, checks, cfg)
    report_path = out.with_suffix(".report.json")
    report_path.with_suffix(".tmp").write_text(json.dumps(report.to_dict()), encoding="utf-8")
    os.replace(report_path.with_suffix(".tmp"), report_path)
    os.replace(tmp, out)


def write_sessions(threads: Iterable[Thread], path: Path, checks: list[Check], cfg: ExtractConfig) -> FilterReport:
    report = FilterReport(kinds=("threads", "sessions", "turns"))
    builder = TreeBuilder(checks, frozenset(cfg.skip_authors), report)
    with open(path, "w", encoding="utf-8") as f:
        for thread in threads:
            for session in builder.sessions(thread):
                f.write(_encode(session) + "\n")
    return report


# --- the command -----------------------------------------------------------------------------------

def _manifest(files: list[Path], cfg: ExtractConfig) -> dict:
    """What the work directory was made from: another run's leftovers are never reused."""
    return {"inputs": [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files],
            "filters": asdict(cfg.filters) if cfg.filters else None, "skip_authors": list(cfg.skip_authors),
            "part": cfg.part, "partition_bytes": cfg.partition_bytes, "layout": LAYOUT}


def _prepare_work(files: list[Path], cfg: ExtractConfig) -> None:
    manifest = json.loads(json.dumps(_manifest(files, cfg), default=sorted))
    path = cfg.work / "manifest.json"
    if cfg.work.exists():
        if not path.is_file():
            raise GptkitError(f"{cfg.work} exists and is not an extract's work directory: move it, or choose another --out")
        if json.loads(path.read_text(encoding="utf-8")) == manifest:
            return  # resume
        shutil.rmtree(cfg.work)
    cfg.work.mkdir(parents=True)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def extract(cfg: ExtractConfig, progress: bool = True) -> FilterReport:
    """Write ``cfg.out``; returns what was written and what each filter removed."""
    parse_part(cfg.part)
    if cfg.partition_bytes < 1:
        raise GptkitError(f"--partition-mb must be positive, got {cfg.partition_bytes / 2**20}")
    files = list(input_files(cfg.inputs))
    out = Path(cfg.out)
    if any(out.resolve() == p.resolve() for p in files):
        raise GptkitError(f"--out {out} is one of the inputs: choose another file for the sessions")
    _prepare_work(files, cfg)
    split_dir = cfg.work / "split"
    if not split_dir.is_dir():
        shutil.rmtree(cfg.work / "split.tmp", ignore_errors=True)
        _, parts = parse_part(cfg.part)
        split(files, cfg, partition_count(files, parts, cfg.partition_bytes), cfg.work / "split.tmp", progress)
        os.replace(cfg.work / "split.tmp", split_dir)
    frequent = set(np.load(split_dir / "frequent.npy").tolist())
    checks = turn_checks(cfg.filters, lambda t: _hash(response_key(t)) in frequent) if cfg.filters else []
    partitions = sorted(split_dir.glob("p*.jsonl"))
    done_dir = cfg.work / "sessions"
    done_dir.mkdir(exist_ok=True)
    for i, partition in enumerate(tqdm(partitions, desc="building threads", unit="partition", disable=not progress)):
        if not (done_dir / partition.name).exists():
            build(partition, done_dir / partition.name, checks, cfg)
        _pause_point(f"partition {i + 1}")
    report = FilterReport(kinds=("threads", "sessions", "turns"))
    report.declare([GONE, BOT, *(c.name for c in checks), ORPHAN, NO_TITLE, NO_REPLY])
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as f:
        for i, partition in enumerate(partitions):
            with open(done_dir / partition.name, "rb") as part:
                shutil.copyfileobj(part, f)
            report.merge(FilterReport.from_dict(json.loads((done_dir / partition.name).with_suffix(".report.json")
                                                           .read_text(encoding="utf-8"))))
            if i == 0:
                f.flush()
                _pause_point("join")
    os.replace(tmp, out)
    shutil.rmtree(cfg.work)
    return report
