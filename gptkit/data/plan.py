"""Which documents a `prepare` reads, and which of them are held out for validation.

Documents are numbered in input order (files in the order given, directories and globs sorted,
records in file order). ``--part I/N`` takes the I-th of N equal runs of that numbering, so N
machines prepare disjoint slices that together are the whole corpus. Within a part, exactly
``round(n * val_fraction)`` documents (at least one, never all) go to validation: one drawn with the
seed from each of that many equal runs, so validation spreads over the whole corpus. Only counts are
kept in memory (16 bytes a file), never the documents or the list of files.
"""

from __future__ import annotations

import hashlib
import random
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import repeat

from gptkit.data.documents import Document, TextFile, count_documents, input_files, read_documents
from gptkit.errors import GptkitError


def parse_part(part: str) -> tuple[int, int]:
    """"I/N" -> (I, N), checked."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", part)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise GptkitError(f"--part must be I/N with 1 <= I <= N (e.g. 2/4 for the second of four machines), got {part!r}")
    return int(match[1]), int(match[2])


def check_val_fraction(val_fraction: float) -> None:
    if not 0 <= val_fraction < 1:  # also refuses NaN
        raise GptkitError(f"--val-fraction must be at least 0 and below 1 (e.g. 0.05), got {val_fraction}")


@dataclass
class Plan:
    """Documents ``lo`` to ``hi`` of ``inputs`` (one part of them). ``counts`` and ``sizes`` hold
    each input file's documents and approximate bytes of text, in the order input_files gives them;
    ``files_digest`` identifies the files (path, size, modification time)."""

    inputs: list[str]
    counts: array
    sizes: array
    lo: int
    hi: int
    text_field: str = "text"
    files_digest: str = ""

    @property
    def documents(self) -> int:
        return self.hi - self.lo

    @property
    def size(self) -> int:
        """Approximate bytes of text in the part (for the progress bar)."""
        total, first = 0, 0
        for count, size in zip(self.counts, self.sizes):
            inside = max(0, min(self.hi, first + count) - max(self.lo, first))
            total += size * inside // max(1, count)
            first += count
        return total

    def read(self) -> Iterator[Document | TextFile]:
        first = 0
        for path, count in zip(input_files(self.inputs), self.counts):
            if first < self.hi and first + count > self.lo:  # files outside the part are never opened
                for i, doc in enumerate(read_documents(path, self.text_field), first):
                    if i >= self.hi:
                        break
                    if i >= self.lo:
                        yield doc
            first += count

    def split(self, val_fraction: float, seed: int = 0) -> Iterator[tuple[str, Document | TextFile]]:
        """(split, document) of every document of the part; a part of a single document is cut in two."""
        check_val_fraction(val_fraction)
        n = self.documents
        if n == 1 and val_fraction > 0:
            train, val = next(self.read()).split_off(val_fraction)
            yield from (("train", train), ("val", val))
            return
        k = 0 if val_fraction == 0 or n < 2 else min(n - 1, max(1, round(n * val_fraction)))
        for held_out, doc in zip(validation_flags(n, k, seed), self.read()):
            yield ("val" if held_out else "train"), doc


def validation_flags(n: int, k: int, seed: int) -> Iterator[bool]:
    """For documents 0..n-1, whether each is held out: one per run of the k equal runs, drawn with ``seed``."""
    if k == 0:
        yield from repeat(False, n)
        return
    rng = random.Random(seed)
    for run in range(k):
        lo, hi = -(-run * n // k), -(-(run + 1) * n // k)
        pick = rng.randrange(lo, hi)
        yield from (i == pick for i in range(lo, hi))


def plan_inputs(inputs: list[str], text_field: str = "text", part: str = "1/1") -> Plan:
    """Count the documents of ``inputs`` (reading JSON Lines once; text and parquet files from their
    size and metadata) and pick part ``part`` of them."""
    index, parts = parse_part(part)
    counts, sizes, digest, names = array("q"), array("q"), hashlib.sha256(), []
    for path in input_files(inputs):
        count, size = count_documents(path, text_field)
        counts.append(count)
        sizes.append(size)
        stat = path.stat()
        digest.update(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        if len(names) < 3:  # for the message if the corpus turns out to be empty
            names.append(str(path))
    n = sum(counts)
    if sum(sizes) == 0:
        raise GptkitError(f"the corpus is empty: {', '.join(names)} hold no text")
    if n == 0:
        raise GptkitError("the corpus is empty: the input files hold no documents")
    lo, hi = n * (index - 1) // parts, n * index // parts
    if lo == hi:
        raise GptkitError(f"part {index}/{parts} holds no documents: the inputs have only {n}; use at most {n} parts")
    return Plan(list(inputs), counts, sizes, lo, hi, text_field, digest.hexdigest())


def resume_key(plan: Plan, val_fraction: float, seed: int) -> str:
    """What a resumed run must share with the run it continues: the same files, unchanged, and settings."""
    return repr((plan.files_digest, plan.lo, plan.hi, plan.text_field, val_fraction, seed))
