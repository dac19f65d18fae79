"""Labelled examples in (JSONL, CSV, TSV), GPT-1's input transformations out.

Every task becomes K token sequences per example, [start; first; delim; second; extract]:
classify has K = 1 ([start; text; extract]), entail K = 1, similarity K = 2 (both orders), choice
K = number of choices. Batches are padded to their longest sequence with an attention mask.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import numpy as np
import torch

from gptkit.data.batches import EpochBatches, pad
from gptkit.data.documents import expect, iter_jsonl, repeats, text_lines
from gptkit.errors import GptkitError
from gptkit.tokenizer import Tokenizer
from gptkit.train_config import Task

log = logging.getLogger("gptkit")

TASKS = get_args(Task)  # GPT-1's four input transformations
# The columns each task reads: the text fields in input order, then the target.
COLUMNS = {
    "classify": ("text",),
    "entail": ("premise", "hypothesis"),
    "similarity": ("a", "b"),
    "choice": ("context", "choices"),
}
TARGETS = {"classify": ("label",), "entail": ("label",), "similarity": ("score", "label"), "choice": ("answer",)}
# What the columns hold (gptkit.data.documents.KINDS): text fields are strings, whatever the task.
COLUMN_KINDS = {"choices": "a list of at least two non-empty strings"}
TARGET_KINDS = {"label": "a non-empty string or a whole number", "score": "a finite number", "answer": "a whole number"}
START, DELIMITER, EXTRACT = "<|start|>", "<|delimiter|>", "<|extract|>"


@dataclass
class Example:
    first: str  # text, premise, a or context
    seconds: list[str]  # [], [hypothesis], [b] or the choices
    target: str | float | int | None  # class name, score or answer index; None when unlabelled
    where: str  # "file:line", for messages


@dataclass
class Encoded:
    sequences: list[list[int]]  # K token sequences
    target: float | int  # class index, score or answer index (0 when unlabelled)


# --- reading ------------------------------------------------------------------------------------

def read_rows(path: str | Path) -> list[tuple[int, dict]]:
    """(line number, record) of every row of a .jsonl, .csv or .tsv file (optionally .gz or .zst)."""
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    compressed = suffixes[-1:] in ([".gz"], [".zst"])
    kind = suffixes[-2 if compressed else -1] if len(suffixes) > compressed else ""
    if kind not in (".jsonl", ".csv", ".tsv"):
        raise GptkitError(f"{path}: unknown format; name the file .jsonl, .csv or .tsv (optionally .gz or .zst)")
    if not path.is_file():
        raise GptkitError(f"{path}: no such file")
    lines = text_lines(path, errors="strict")  # labels and answers are never guessed from broken bytes
    rows = _jsonl_rows(lines, path) if kind == ".jsonl" else _table_rows(lines, "\t" if kind == ".tsv" else ",")
    if not rows:
        raise GptkitError(f"{path} is empty: it holds no examples")
    return rows


def _jsonl_rows(lines, path: Path) -> list[tuple[int, dict]]:
    rows = list(iter_jsonl(lines, str(path)))
    for n, record in rows:
        if not isinstance(record, dict):
            raise GptkitError(f"{path}:{n}: each line must be a JSON object of columns")
    return rows


def _table_rows(lines, delimiter: str) -> list[tuple[int, dict]]:
    reader = csv.DictReader(lines, delimiter=delimiter)
    return [(reader.line_num, {k: v for k, v in row.items() if v is not None}) for row in reader]


def parse_example(row: dict, task: str, where: str, labelled: bool = True) -> Example:
    """One record as an Example, or an error naming the file, line and missing column."""
    if task == "choice" and "choices" not in row and "choice0" in row:  # CSV/TSV: columns choice0, choice1, ...
        row = {**row, "choices": [row[f"choice{i}"] for i in range(len(row)) if f"choice{i}" in row]}
    target_col = next((c for c in TARGETS[task] if c in row), TARGETS[task][0]) if labelled else None
    missing = [c for c in (*COLUMNS[task], target_col) if c and c not in row]
    if missing:
        wanted = ", ".join(COLUMNS[task] + (" or ".join(TARGETS[task]),))
        raise GptkitError(f"{where}: missing column {', '.join(map(repr, missing))} (the {task} task reads {wanted})")
    first, *rest = (expect(row[c], COLUMN_KINDS.get(c, "a string"), f"{where}: column {c!r}") for c in COLUMNS[task])
    target = _target(row[target_col], target_col, where) if target_col else None
    if task == "choice" and target is not None and not 0 <= target < len(rest[0]):
        raise GptkitError(f"{where}: answer {target} is not the index of one of its {len(rest[0])} choices (0-based)")
    return Example(first, rest[0] if task == "choice" else rest, target, where)


def _target(value, column: str, where: str) -> str | float | int:
    """A label (text, or a whole number read as its text), a finite score or a choice index; a CSV or
    TSV cell is text, read as the number it spells."""
    if isinstance(value, str) and column != "label":
        value = _number(value)
    value = expect(value, TARGET_KINDS[column], f"{where}: column {column!r}")
    return str(value) if column == "label" else value


def _number(text: str) -> int | float | str:
    """The int or float a cell spells, or the cell itself (for the error to show)."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def read_examples(path: str | Path, task: str, labelled: bool = True, scored: bool = False) -> list[Example]:
    """The examples of a file, checked to be consistent: one target column, one number of choices; in
    a ``scored`` file (validation) no input twice. A training file may repeat one: it weighs more."""
    if task not in TASKS:
        raise GptkitError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    rows = read_rows(path)
    examples = [parse_example(row, task, f"{path}:{line}", labelled) for line, row in rows]
    for line, first in repeats((_input(task, ex), line) for (line, _), ex in zip(rows, examples) if scored):
        raise GptkitError(f"{path}:{line}: the same input as line {first}; remove one (it would be scored twice)")
    first = examples[0]
    for ex in examples[1:]:
        if len(ex.seconds) != len(first.seconds):
            raise GptkitError(f"{ex.where}: {len(ex.seconds)} choices, but {first.where} has {len(first.seconds)}; "
                              "every example needs the same number of choices")
        if labelled and isinstance(ex.target, float) != isinstance(first.target, float):
            raise GptkitError(f"{ex.where}: mixes 'score' and 'label' columns; use one of them in every line")
    return examples


def _input(task: str, ex: Example) -> tuple:
    """An example's inputs as a key; a similarity pair in either order is the same pair (the model
    reads both orders)."""
    if task == "similarity":
        return tuple(sorted((ex.first, *ex.seconds)))
    return ex.first, *ex.seconds


# --- labels -------------------------------------------------------------------------------------

@dataclass
class Labels:
    """What the head predicts: class names, a regression score (names empty), or choice indices."""

    task: str
    names: list[str]
    regression: bool = False

    @classmethod
    def infer(cls, task: str, train: list[Example]) -> Labels:
        if task == "choice":
            return cls(task, [str(i) for i in range(len(train[0].seconds))])
        if isinstance(train[0].target, float):
            return cls(task, [], regression=True)
        return cls(task, sorted({str(ex.target) for ex in train}))

    @property
    def n_outputs(self) -> int:
        """Width of the head: one score per class, one for regression, one per choice (shared)."""
        return 1 if self.regression or self.task == "choice" else len(self.names)

    def index(self, ex: Example, train_file: str | Path) -> float | int:
        if self.regression or self.task == "choice":
            return ex.target
        if ex.target not in self.names:
            raise GptkitError(f"{ex.where}: label {ex.target!r} never appears in the training file {train_file} "
                              f"(its labels: {', '.join(self.names)})")
        return self.names.index(ex.target)

    def majority_baseline(self, train: list[Example], valid: list[Example]) -> float | None:
        """Accuracy on ``valid`` of always answering the most frequent training target."""
        if self.regression:
            return None
        majority = Counter(ex.target for ex in train).most_common(1)[0][0]
        return float(np.mean([ex.target == majority for ex in valid]))


# --- the input transformations --------------------------------------------------------------------

def add_special_tokens(tokenizer: Tokenizer) -> tuple[list[int], list[int]]:
    """(ids of start, delimiter, extract; the ids among them that are new to the vocabulary)."""
    before = set(tokenizer.special_tokens)
    ids = tokenizer.add_special_tokens([START, DELIMITER, EXTRACT])
    return ids, [i for t, i in zip((START, DELIMITER, EXTRACT), ids) if t not in before]


def truncate(first: list[int], seconds: list[list[int]], budget: int) -> tuple[list[int], list[list[int]], bool]:
    """Fit into ``budget`` tokens: cut the first field from its start (keeping what sits next to the
    delimiter), and only if that is not enough the second fields from their end."""
    longest = max((len(s) + 1 for s in seconds), default=0)  # +1: the delimiter
    over = len(first) + longest - budget
    if over <= 0:
        return first, seconds, False
    cut_first = min(over, len(first))
    keep = longest - 1 - (over - cut_first)
    return first[cut_first:], [s[:keep] for s in seconds], True


class Transform:
    """Tokenizes examples into GPT-1's task layouts for one tokenizer and context length."""

    def __init__(self, task: str, tokenizer: Tokenizer, block_size: int):
        self.task, self.tokenizer, self.block_size = task, tokenizer, block_size
        self.start, self.delim, self.extract = (tokenizer.special_tokens[t] for t in (START, DELIMITER, EXTRACT))

    def sequences(self, ex: Example) -> tuple[list[list[int]], bool]:
        """The K token sequences of one example, and whether it had to be cut."""
        encode = self.tokenizer.encode
        first = encode(ex.first, allow_special=False)
        seconds = [encode(s, allow_special=False) for s in ex.seconds]
        first, seconds, cut = truncate(first, seconds, self.block_size - 2)  # start + extract
        pairs = [(first, s) for s in seconds]
        if self.task == "similarity":  # no natural order: run both, add the states (see the model)
            pairs.append((seconds[0], first))
        if not pairs:  # classify: [start; text; extract]
            return [[self.start, *first, self.extract]], cut
        return [[self.start, *a, self.delim, *b, self.extract] for a, b in pairs], cut

    def encode(self, examples: list[Example], labels: Labels | None = None, source: str = "") -> list[Encoded]:
        """Encoded examples (targets as indices); warns how many had to be cut to fit the context."""
        out, n_cut = [], 0
        for ex in examples:
            seqs, cut = self.sequences(ex)
            n_cut += cut
            out.append(Encoded(seqs, labels.index(ex, source) if labels and ex.target is not None else 0))
        if n_cut:
            log.warning("%d of %d examples in %s are longer than the context of %d tokens: cut from the start "
                        "of their first field", n_cut, len(examples), source or "the input", self.block_size)
        return out


def collate(items: list[Encoded], regression: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids (B, K, T), attention mask (B, K, T), targets (B,)), padded on the right to the longest T."""
    K = len(items[0].sequences)
    ids, mask = pad([seq for it in items for seq in it.sequences], 0)  # (B*K, T)
    targets = torch.tensor([it.target for it in items], dtype=torch.float32 if regression else torch.long)
    return ids.view(len(items), K, -1), mask.view(len(items), K, -1), targets


def example_batches(items: list[Encoded], batch_size: int, regression: bool = False, seed: int = 0) -> EpochBatches:
    """Shuffled epochs of encoded examples: the Trainer's BatchSource for fine-tuning."""
    return EpochBatches(items, batch_size, lambda batch: collate(batch, regression), seed)
