"""The shuffle of `dedup`, as files on disk: sorted runs of (key, document) written by each part,
merged back in key order a block at a time, so no process ever holds more than a few blocks.

A run is an array of ENTRY records sorted by (key, document), stored raw in a file at some offset.
``merge`` reads every run in blocks and yields arrays of entries in global (key, document) order,
cut only between different keys: a group of documents sharing a key always comes in one array.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENTRY = np.dtype([("key", "<u8"), ("doc", "<u8")])
BUFFER_ENTRIES = 1 << 21  # all runs' blocks together (32 MiB)


def sort_entries(keys: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """(key, doc) entries sorted by key, then document."""
    order = np.lexsort((docs, keys))
    out = np.empty(len(keys), dtype=ENTRY)
    out["key"], out["doc"] = keys[order], docs[order]
    return out


@dataclass
class Run:
    path: Path
    offset: int  # bytes
    count: int  # entries


class _Reader:
    def __init__(self, run: Run, block: int):
        self.file = open(run.path, "rb")
        self.file.seek(run.offset)
        self.left, self.block = run.count, block
        self.buffer = np.zeros(0, dtype=ENTRY)

    def refill(self) -> bool:
        """Append the next block to the buffer; False when the run is exhausted."""
        if self.left == 0:
            self.file.close()
            return False
        n = min(self.block, self.left)
        block = np.fromfile(self.file, dtype=ENTRY, count=n)
        if len(block) != n:
            raise OSError(f"{self.file.name} is shorter than its index says (truncated)")
        self.left -= n
        self.buffer = np.concatenate((self.buffer, block)) if len(self.buffer) else block
        return True


def merge(runs: list[Run], buffer_entries: int = BUFFER_ENTRIES) -> Iterator[np.ndarray]:
    """The entries of all ``runs`` in (key, doc) order, in arrays that never split a key's group."""
    block = max(256, buffer_entries // max(1, len(runs)))
    readers = [r for r in (_Reader(run, block) for run in runs if run.count)]
    active = [r for r in readers if r.refill()]
    done: list[_Reader] = []
    while active:
        bound = min(int(r.buffer["key"][-1]) for r in active)  # every entry with a smaller key is in a buffer
        parts = []
        for r in active + done:
            cut = int(np.searchsorted(r.buffer["key"], np.uint64(bound), side="left"))
            if cut:
                parts.append(r.buffer[:cut])
                r.buffer = r.buffer[cut:]
        if parts:
            yield _sorted(np.concatenate(parts))
        still = []
        for r in active:
            if len(r.buffer) == 0 or int(r.buffer["key"][-1]) == bound:
                if not r.refill():
                    done.append(r)
                    continue
            still.append(r)
        active = still
    rest = [r.buffer for r in done if len(r.buffer)]
    if rest:
        yield _sorted(np.concatenate(rest))


def _sorted(entries: np.ndarray) -> np.ndarray:
    return entries[np.lexsort((entries["doc"], entries["key"]))]


def group_pairs(entries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (a, b), a < b, from entries sorted by (key, doc): within each group of equal
    keys, every document with the group's first and with the one before it."""
    if len(entries) < 2:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint64)
    keys, docs = entries["key"], entries["doc"]
    starts = np.concatenate(([True], keys[1:] != keys[:-1]))
    index = np.arange(len(keys))
    first = np.maximum.accumulate(np.where(starts, index, 0))
    member = ~starts
    a_first, b_first = docs[first[member]], docs[member]
    chain = member & (first != index - 1)  # the one before is not the first: a second pair
    chain_index = np.flatnonzero(chain)
    a = np.concatenate((a_first, docs[chain_index - 1]))
    b = np.concatenate((b_first, docs[chain_index]))
    same = a != b  # a document listed twice under one key (never, unless a run repeats it)
    return a[same], b[same]
