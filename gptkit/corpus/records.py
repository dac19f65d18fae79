"""Records in and out: every step reads documents as records (a JSON Lines line, a parquet row, a
text file) with their number in the corpus, and writes the records it keeps exactly as they came in.

Documents are numbered as `gptkit prepare` numbers them (gptkit.data.plan): the inputs in the order
given, directories and globs sorted, records in file order, blank lines skipped; ``--part I/N`` is
the I-th of N equal runs of that numbering. A JSON Lines record is written back as the bytes of its
line (without the line break); a parquet row as a JSON object of its columns; a text file as
{"text": its contents}.

Output files are appended to and made durable at checkpoints: ``Writer.checkpoint`` ends the
compressed frame (zstd) or member (gzip), flushes and fsyncs, and returns the file's length, which
a step records with how far it has read. A resumed step truncates the file to that length and goes
on from there, so an interrupted run ends with exactly the bytes an uninterrupted one writes.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard

from gptkit.data.documents import _SURROGATE, _parquet, input_files, input_kind, text_lines
from gptkit.data.plan import Plan
from gptkit.errors import GptkitError

COMPRESSIONS = {"none": "", "gz": ".gz", "zst": ".zst"}


@dataclass
class Record:
    index: int  # the document's number in the corpus
    text: str
    raw: str  # the record as it is written out (a JSON object, on one line)


def _line(line: str) -> str:
    return line[:-2] if line.endswith("\r\n") else line[:-1] if line.endswith(("\n", "\r")) else line


def _parquet_records(path: Path, first: int, lo: int, hi: int, text_field: str) -> Iterator[Record]:
    index = first
    for batch in _parquet(path, text_field).iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            if index >= hi:
                return
            if index >= lo:
                text = row[text_field]
                if text is None:
                    raise GptkitError(f"{path}: row {index - first} has no {text_field!r} (null); drop or fill such rows")
                yield Record(index, text, json.dumps(row, ensure_ascii=False, default=str))
            index += 1


def read_records(plan: Plan, start: int | None = None, wanted=None) -> Iterator[Record | None]:
    """The records of the plan's part from number ``start`` (default: the part's first) on, in
    order. ``wanted(index)``, if given, says which records to parse; the others come as None."""
    lo = plan.lo if start is None else start
    first = 0
    for path, count in zip(input_files(plan.inputs), plan.counts):
        if first < plan.hi and first + count > lo:
            kind = input_kind(path)
            if kind == "jsonl":
                yield from _jsonl_records(path, first, lo, plan.hi, plan.text_field, wanted)
            elif kind == "parquet":
                yield from _parquet_records(path, first, lo, plan.hi, plan.text_field)
            else:
                text = "".join(_text_pieces(path))
                yield Record(first, text, json.dumps({plan.text_field: text}, ensure_ascii=False))
        first += count


def _jsonl_records(path: Path, first: int, lo: int, hi: int, text_field: str, wanted) -> Iterator[Record | None]:
    """Records ``lo`` to ``hi`` of a JSON Lines file whose first record is number ``first``; one that
    ``wanted`` (if given) does not want comes as None, unparsed."""
    index = first
    for line_no, line in enumerate(text_lines(path), 1):
        if not line.strip():
            continue
        if index >= hi:
            return
        if index >= lo:
            if wanted is None or wanted(index):
                yield _jsonl_record(path, line_no, line, index, text_field)
            else:
                yield None
        index += 1


def _jsonl_record(path, line_no, line, index, text_field) -> Record:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise GptkitError(f"{path}:{line_no}: not valid JSON ({e.msg})") from None
    if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
        raise GptkitError(f"{path}:{line_no}: each line needs a string field {text_field!r}")
    text = record[text_field]
    return Record(index, _SURROGATE.sub("\ufffd", text) if not text.isascii() else text, _line(line))


def _text_pieces(path: Path) -> Iterator[str]:
    from gptkit.data.documents import TextFile

    yield from TextFile(path).pieces()


def batches(records: Iterator[Record | None], chars: int = 1 << 20) -> Iterator[list[Record | None]]:
    """Consecutive records in lists of about ``chars`` characters of text."""
    batch, size = [], 0
    for record in records:
        batch.append(record)
        size += len(record.text) if record is not None else 0
        if size >= chars or len(batch) >= 65536:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


class Writer:
    """Kept records, appended to one JSON Lines file (plain, gzip or zstd), durable at checkpoints."""

    def __init__(self, path: Path, length: int = 0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mode = "r+b" if self.path.exists() else "w+b"
        self.raw = open(self.path, mode)
        self.raw.truncate(length)  # bytes past the last checkpoint belong to a run that was cut short
        self.raw.seek(length)
        self.kind = "zst" if self.path.name.endswith(".zst") else "gz" if self.path.name.endswith(".gz") else "none"
        self.stream = None

    def _open(self):
        if self.stream is None:
            if self.kind == "zst":
                self.stream = zstandard.ZstdCompressor(level=3).stream_writer(self.raw, closefd=False)
            elif self.kind == "gz":
                self.stream = gzip.GzipFile(fileobj=self.raw, mode="wb", mtime=0)
            else:
                self.stream = self.raw
        return self.stream

    def write(self, raw: str) -> None:
        self._open().write(raw.encode("utf-8") + b"\n")

    def checkpoint(self) -> int:
        """End the current compressed frame, flush and fsync; the file's length."""
        if self.stream is not None and self.stream is not self.raw:
            if self.kind == "zst":
                self.stream.flush(zstandard.FLUSH_FRAME)
            else:
                self.stream.close()  # a gzip member ends; the next write starts another
            self.stream = None
        self.raw.flush()
        os.fsync(self.raw.fileno())
        return self.raw.tell()

    def close(self) -> int:
        length = self.checkpoint()
        self.raw.close()
        return length


def output_name(stem: str, compression: str) -> str:
    if compression not in COMPRESSIONS:
        raise GptkitError(f"--compression must be one of {', '.join(COMPRESSIONS)}, got {compression!r}")
    return f"{stem}.jsonl{COMPRESSIONS[compression]}"
