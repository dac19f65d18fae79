"""Where documents come from: the user's files (plain text, .jsonl) or the bundled corpora."""

from __future__ import annotations

import glob
import json
import lzma
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from gptkit.errors import GptkitError

TEXT_SUFFIXES = {".txt", ".md", ".text", ".jsonl", ".json", ".csv", ".tsv", ".rst", ".py", ".html", ""}

# Whole plays held out of training so validation measures text the model never saw.
SHAKESPEARE_VALIDATION = ("julius_caesar", "tempest", "twelfth_night")


@dataclass
class Document:
    text: str
    source: str  # file (and line) it came from, for messages


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files named by paths, directories (searched recursively) or glob patterns, in a stable order."""
    files: list[Path] = []
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            # Hidden files and folders (.git, .DS_Store, ...) are never text to train on.
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
        elif path.is_file():
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        if not found:
            raise GptkitError(f"no input files found for {spec!r}: give a text file, a .jsonl file, a directory or a glob")
        files.extend(found)
    return files


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


def read_documents(path: Path, text_field: str = "text") -> Iterator[Document]:
    """A .jsonl file gives one document per line (its ``text`` field); any other file is one document."""
    if path.suffix.lower() != ".jsonl":
        try:
            yield Document(path.read_text(encoding="utf-8", errors="replace"), str(path))
        except OSError as e:
            raise GptkitError(f"cannot read {path}: {e.strerror}") from None
        return
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for line_no, record in iter_jsonl(f, str(path)):
            if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
                raise GptkitError(f"{path}:{line_no}: each line needs a string field {text_field!r}")
            yield Document(record[text_field], f"{path}:{line_no}")


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
