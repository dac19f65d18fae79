"""Where documents come from: the user's files (plain text, JSON Lines, parquet) or the bundled corpora.

Every reader streams: a text file is read in blocks, a JSON Lines or parquet file one record at a
time, so memory never grows with the size of a file. Bytes that are not valid UTF-8 become U+FFFD.
"""

from __future__ import annotations

import bz2
import codecs
import glob
import gzip
import io
import json
import lzma
import math
import os
import re
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import zstandard

from gptkit.errors import GptkitError

TEXT_SUFFIXES = {".txt", ".md", ".text", ".json", ".csv", ".tsv", ".rst", ".py", ".html", ""}
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst")
BLOCK = 1 << 20  # bytes read from a text file at a time

# Whole plays held out of training so validation measures text the model never saw.
SHAKESPEARE_VALIDATION = ("julius_caesar", "tempest", "twelfth_night")

# A JSON "\ud800" escape decodes to a lone surrogate, which no tokenizer can encode as UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class Document:
    """A document held in memory: a JSON Lines record, a parquet row, a bundled work."""

    text: str
    source: str  # file (and line) it came from, for messages

    def pieces(self) -> Iterator[str]:
        yield self.text

    def split_off(self, val_fraction: float) -> tuple[Document, Document]:
        """(train, validation) halves, cut as ``cut_offset`` says."""
        cut = cut_offset(len(self.text), val_fraction, lambda lo, hi: self.text.find("\n", lo, hi))
        return Document(self.text[:cut], self.source), Document(self.text[cut:], self.source)


@dataclass
class TextFile:
    """A text file (or the byte range ``start:end`` of one) as one document, read in blocks.

    Line endings are read as Python's text mode reads them ("\\r\\n" and "\\r" become "\\n").
    """

    path: Path
    start: int = 0
    end: int | None = None

    @property
    def source(self) -> str:
        return str(self.path)

    @property
    def size(self) -> int:
        return (self.path.stat().st_size if self.end is None else self.end) - self.start

    def pieces(self) -> Iterator[str]:
        decoder = io.IncrementalNewlineDecoder(codecs.getincrementaldecoder("utf-8")(errors="replace"), translate=True)
        left = self.size
        try:
            with open(self.path, "rb") as f:
                f.seek(self.start)
                while left > 0 and (block := f.read(min(BLOCK, left))):
                    left -= len(block)
                    yield decoder.decode(block)
        except OSError as e:
            raise _unreadable(self.path, e) from None
        yield decoder.decode(b"", final=True)

    def split_off(self, val_fraction: float) -> tuple[TextFile, TextFile]:
        """(train, validation) byte ranges, cut as ``cut_offset`` says (a line break is never inside a character)."""
        cut = cut_offset(self.size, val_fraction, self._find_newline) + self.start
        cut = self._character_start(cut)
        return TextFile(self.path, self.start, cut), TextFile(self.path, cut, self.end)

    def _find_newline(self, lo: int, hi: int) -> int:
        with open(self.path, "rb") as f:
            f.seek(self.start + lo)
            while lo < hi and (block := f.read(min(BLOCK, hi - lo))):
                if (at := block.find(b"\n")) >= 0:
                    return lo + at
                lo += len(block)
        return -1

    def _character_start(self, offset: int) -> int:
        """``offset``, moved past UTF-8 continuation bytes so it starts a character."""
        with open(self.path, "rb") as f:
            f.seek(offset)
            head = f.read(4)
        return offset + next((i for i, b in enumerate(head) if b & 0xC0 != 0x80), len(head))


def cut_offset(size: int, val_fraction: float, find_newline: Callable[[int, int], int]) -> int:
    """Where a corpus of one document is cut into training and validation text: just after the first
    line break past ``1 - val_fraction`` of it, but no later than halfway into the validation part
    (else one long last paragraph would leave validation nearly empty). ``find_newline(lo, hi)`` is
    the position of the first line break in ``[lo, hi)``, or -1."""
    target = int(size * (1 - val_fraction))
    limit = target + (size - target) // 2
    at = find_newline(target, limit)
    return at + 1 if at >= 0 else limit


def input_kind(path: Path) -> str | None:
    """"jsonl", "parquet" or "text" by the file's name; None for files that are not text."""
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    return "text" if path.suffix.lower() in TEXT_SUFFIXES else None


def _walk(folder: Path) -> Iterator[Path]:
    """The input files below ``folder`` in the order of their sorted paths, listing one directory at
    a time. Hidden files and folders (.git, .DS_Store, ...) are never text to train on."""
    for name in sorted(os.listdir(folder)):
        path = folder / name
        if name.startswith("."):
            continue
        if path.is_dir():
            yield from _walk(path)
        elif path.is_file() and input_kind(path):
            yield path


def input_files(inputs: list[str]) -> Iterator[Path]:
    """Files named by paths, directories (searched recursively) or glob patterns, in a stable order,
    one at a time (a corpus of millions of files is never listed whole, except by a glob)."""
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            found = _walk(path)
        elif path.is_file():
            found = iter([path])
        else:
            found = iter(sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file()))
        first = next(found, None)
        if first is None:
            raise GptkitError(f"no input files found for {spec!r}: give a text, .jsonl(.gz/.zst) or .parquet file, "
                              "a directory or a glob")
        yield first
        yield from found


def iter_jsonl(lines: Iterable[str], name: str) -> Iterator[tuple[int, object]]:
    """(line number, value) of each non-blank line of JSON Lines; a line that is not JSON is a clear error."""
    for line_no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise GptkitError(f"{name}:{line_no}: not valid JSON ({e.msg})") from None
        yield line_no, record


# --- checking records ------------------------------------------------------------------------------

def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


# What a field may hold, by the words an error uses. JSON's true is never a number, nor NaN or inf.
KINDS: dict[str, Callable[[object], bool]] = {
    "a string": lambda v: isinstance(v, str),
    "a non-empty string": lambda v: isinstance(v, str) and v != "",
    "a whole number": _whole,
    "a whole number >= 1": lambda v: _whole(v) and v >= 1,
    "a finite number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    "a non-empty string or a whole number": lambda v: _whole(v) or (isinstance(v, str) and v != ""),
    "a list of non-empty strings": _strings,
    "a non-empty list of non-empty strings": lambda v: _strings(v) and len(v) >= 1,
    "a list of at least two non-empty strings": lambda v: _strings(v) and len(v) >= 2,
    "a mapping": lambda v: isinstance(v, dict),
}


def expect(value, kind: str, where: str):
    """``value`` if it is ``kind`` (a key of KINDS), else a one-line error naming ``where`` (a file and
    line or field) and what it holds, so no value is silently turned into another (null into "None")."""
    if not KINDS[kind](value):
        shown = json.dumps(value, default=str)  # ASCII, whatever the value holds (NaN, lone surrogates)
        raise GptkitError(f"{where} must be {kind}, got {shown[:60] + '...' if len(shown) > 60 else shown}")
    return value


def repeats(keyed: Iterable[tuple[Hashable, int]]) -> Iterator[tuple[int, int]]:
    """(line, earlier line) of every (key, line) whose key an earlier line had: the same input twice
    is scored twice."""
    first: dict[Hashable, int] = {}
    for key, where in keyed:
        if key in first:
            yield where, first[key]
        else:
            first[key] = where


# --- compressed text -------------------------------------------------------------------------------

def _unreadable(path: Path, e: Exception) -> GptkitError:
    return GptkitError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}")


def _zstd_chunks(raw) -> Iterator[bytes]:
    """The decompressed bytes of every zstd frame of ``raw``, and EOFError where it stops inside one
    (zstandard's readers end quietly there, as if the file were whole). Input is fed in the library's
    recommended steps, so each chunk stays about that size times the compression ratio."""
    frame, data = None, b""
    while data or (data := raw.read(zstandard.DECOMPRESSION_RECOMMENDED_INPUT_SIZE)):
        if frame is None or frame.eof:
            frame = zstandard.ZstdDecompressor().decompressobj()
        yield frame.decompress(data)
        data = frame.unused_data if frame.eof else b""
    if frame is not None and not frame.eof:
        raise EOFError("truncated (it ends inside a zstd frame); compress or download it again")


class _ChunkStream(io.RawIOBase):
    """A readable binary stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]):
        self.chunks, self.left = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.left:
            if (chunk := next(self.chunks, None)) is None:
                return 0
            self.left = chunk
        n = min(len(buffer), len(self.left))
        buffer[:n], self.left = self.left[:n], self.left[n:]
        return n


def text_lines(path: str | Path, errors: str = "replace") -> Iterator[str]:
    """The lines of a text file, decompressed (.gz, .zst, .bz2) and decoded: invalid UTF-8 becomes U+FFFD, or
    with ``errors="strict"`` is an error naming the file; so is a truncated or damaged compressed file."""
    path = Path(path)
    name = path.name.lower()
    try:
        with open(path, "rb") as raw:
            if name.endswith(".gz"):
                stream = gzip.GzipFile(fileobj=raw)
            elif name.endswith(".zst"):
                stream = io.BufferedReader(_ChunkStream(_zstd_chunks(raw)))
            elif name.endswith(".bz2"):
                stream = bz2.BZ2File(raw)
            else:
                stream = raw
            yield from io.TextIOWrapper(stream, encoding="utf-8-sig", errors=errors, newline="")
    except UnicodeDecodeError as e:
        raise GptkitError(f"{path} is not UTF-8 text ({e.reason}); save it as UTF-8") from None
    except (OSError, EOFError, zstandard.ZstdError) as e:  # unreadable, truncated or not compressed data
        raise _unreadable(path, e) from None


def _jsonl_documents(path: Path, text_field: str) -> Iterator[Document]:
    for line_no, record in iter_jsonl(text_lines(path), str(path)):
        if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
            raise GptkitError(f"{path}:{line_no}: each line needs a string field {text_field!r}")
        text = record[text_field]
        if not text.isascii():
            text = _SURROGATE.sub("\ufffd", text)
        yield Document(text, f"{path}:{line_no}")


def _parquet(path: Path, text_field: str):
    """The open ParquetFile, after checking it has a string column ``text_field``."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise GptkitError(f"reading {path} needs pyarrow: pip install 'gptkit[parquet]'") from None
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as e:
        raise GptkitError(f"cannot read {path} as parquet: {e}") from None
    schema = parquet.schema_arrow
    if text_field not in schema.names:
        raise GptkitError(f"{path} has no column {text_field!r} (columns: {', '.join(schema.names)}); "
                          "choose one with --text-field")
    kind = schema.field(text_field).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise GptkitError(f"{path}: column {text_field!r} holds {kind}, not text; choose one with --text-field")
    return parquet


def _parquet_documents(path: Path, text_field: str) -> Iterator[Document]:
    row = 0
    for batch in _parquet(path, text_field).iter_batches(batch_size=1024, columns=[text_field]):
        for text in batch.column(0).to_pylist():
            if text is None:
                raise GptkitError(f"{path}: row {row} has no {text_field!r} (null); drop or fill such rows")
            yield Document(text, f"{path}:row {row}")
            row += 1


def read_documents(path: Path, text_field: str = "text") -> Iterator[Document | TextFile]:
    """A .jsonl(.gz/.zst) file gives one document per line (its ``text_field``), a parquet file one per
    row (its ``text_field`` column); any other file is one document."""
    kind = input_kind(path)
    if kind == "jsonl":
        return _jsonl_documents(path, text_field)
    if kind == "parquet":
        return _parquet_documents(path, text_field)
    return iter([TextFile(path)])


def count_documents(path: Path, text_field: str = "text") -> tuple[int, int]:
    """(documents, approximate bytes of text) of a file, without holding it in memory: the split into
    training and validation, ``--part`` and the progress bar are planned from these."""
    kind = input_kind(path)
    if kind == "jsonl":
        sizes = [0, 0]
        for line in text_lines(path):
            if line.strip():
                sizes[0] += 1
                sizes[1] += len(line)
        return sizes[0], sizes[1]
    if kind == "parquet":
        meta = _parquet(path, text_field).metadata
        groups = [meta.row_group(g) for g in range(meta.num_row_groups)]
        size = sum(group.column(c).total_uncompressed_size for group in groups for c in range(group.num_columns)
                   if group.column(c).path_in_schema == text_field)
        return meta.num_rows, size
    return 1, path.stat().st_size


def shakespeare() -> list[dict]:
    """The 42 works of Shakespeare (Project Gutenberg), as {"name", "title", "text"} records."""
    data = resources.files("gptkit.data") / "corpora" / "shakespeare.jsonl.xz"
    with data.open("rb") as raw, lzma.open(raw, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def shakespeare_splits() -> dict[str, list[Document]]:
    """Train on 39 works; validate on three whole plays the model never sees."""
    splits: dict[str, list[Document]] = {"train": [], "val": []}
    for work in shakespeare():
        split = "val" if work["name"] in SHAKESPEARE_VALIDATION else "train"
        splits[split].append(Document(work["text"], f"shakespeare:{work['name']}"))
    return splits
