"""Drop training documents that share a word 13-gram with an evaluation task, as GPT-3 did
(Brown et al. 2020, appendix C): both sides lowercased, punctuation removed, split on whitespace.

The tasks are gptkit's own (the `gptkit eval` tasks' scored examples, and the valid and test sets of
the `gptkit finetune` tasks) or files the user names: a task file (.yaml/.json, as `gptkit eval task`
reads), a JSON Lines file (a record's strings joined in order are one example), or a text file. Each
example's text is what a model is shown and asked for: the prompt filled in, then the answer (or,
for a multiple-choice task, the prompt followed by each choice). An example of fewer than 13 words
has no 13-gram and cannot be found; the report counts them.

With ``--cut`` a document is cut instead of dropped, as GPT-3 cut its training data: each shared
13-gram goes with 200 characters on either side, the pieces of 200 characters or more are kept as
records of their own, and a document that falls into more than 10 pieces is dropped whole.

Memory holds the tasks' 13-grams (8 bytes each, plus the names of their tasks), never the corpus.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from gptkit.corpus.records import Record
from gptkit.corpus.step import Replace
from gptkit.corpus.text import clean_bytes, ngram_hashes, word_hashes
from gptkit.data.documents import iter_jsonl, text_lines
from gptkit.errors import GptkitError
from gptkit.io import read_text

NGRAM = 13
WINDOW = 200  # GPT-3's cut: characters removed on either side of a shared 13-gram; shorter pieces are dropped
MAX_PIECES = 10  # GPT-3's cut: a document that falls into more pieces is dropped whole


@dataclass
class Task:
    name: str
    texts: list[str]


# Where gptkit's own tasks are (read as files: importing gptkit.eval or gptkit.finetune loads PyTorch)
EVAL_TASKS = Path(__file__).resolve().parents[1] / "eval" / "tasks"
FINETUNE_TASKS = Path(__file__).resolve().parents[1] / "finetune" / "tasks"
FINETUNE_SPLITS = ("valid", "test")  # what fine-tuned models are scored on; train is what they learn from


def _eval_task_texts(path: Path) -> list[str]:
    """The scored examples of a `gptkit eval` task file, as the model is shown them with their answers."""
    try:
        spec = yaml.safe_load(read_text(path, fix="save the task file as UTF-8"))
    except yaml.YAMLError as e:
        raise GptkitError(f"task file {path} cannot be parsed: {str(e).splitlines()[0]}") from None
    if not isinstance(spec, dict) or not all(isinstance(spec.get(k), str) for k in ("name", "type", "data")):
        raise GptkitError(f"task file {path} must be a mapping with string fields name, type and data (as `gptkit eval "
                          "task` reads)")
    data = path.parent / spec["data"]
    if not data.is_file():
        raise GptkitError(f"task file {path}: its data file {data} does not exist")
    prompt, prefix = spec.get("prompt", "{text}"), spec.get("answer_prefix", " ")
    answer, choices = spec.get("answer", "answer"), spec.get("choices", "choices")
    texts = []
    for line_no, example in iter_jsonl(text_lines(data), str(data)):
        try:
            shown = prompt.format(**example)
        except (KeyError, ValueError, TypeError, IndexError) as e:
            raise GptkitError(f"{data}:{line_no}: the task's prompt cannot be filled in ({e!r})") from None
        if spec["type"] == "choice":
            texts.extend(shown + prefix + str(c) for c in example.get(choices, []))
        else:
            texts.append(shown + prefix + str(example.get(answer, "")))
    return texts


def _records_texts(path: Path, name: str) -> list[str]:
    """The examples of a JSON Lines file: each record's strings joined in order (so a 13-gram that
    runs from a question into its answer is found), or a ``context`` followed by each of its ``choices``."""
    texts = []
    for _, record in iter_jsonl(text_lines(path), name):
        if isinstance(record, dict) and isinstance(record.get("context"), str) and isinstance(record.get("choices"), list):
            texts.extend(f"{record['context']} {c}" for c in _strings(record["choices"]))
        else:
            texts.append(" ".join(_strings(record)))
    return texts


def _strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def _eval_tasks() -> dict[str, Path]:
    return {p.name.removesuffix(".yaml"): p for p in sorted(EVAL_TASKS.glob("*.yaml"))}


def _finetune_tasks() -> list[str]:
    return sorted({p.name.split("_")[0] for p in FINETUNE_TASKS.glob("*_test.jsonl.gz")})


def shipped_tasks() -> list[str]:
    """The names of gptkit's own evaluation tasks: `gptkit eval task`'s, then `gptkit finetune`'s sets."""
    return list(_eval_tasks()) + _finetune_tasks()


def load_task_texts(spec: str) -> Task:
    """A task by a shipped task's name or by a file."""
    path = Path(spec)
    if not path.exists():
        if spec in _eval_tasks():
            return Task(spec, _eval_task_texts(_eval_tasks()[spec]))
        if spec in _finetune_tasks():
            files = [FINETUNE_TASKS / f"{spec}_{split}.jsonl.gz" for split in FINETUNE_SPLITS]
            return Task(spec, [t for f in files for t in _records_texts(f, str(f))])
        raise GptkitError(f"--task {spec}: no such file and no shipped task of that name; shipped: "
                          f"{', '.join(shipped_tasks())}")
    if path.is_dir():
        raise GptkitError(f"--task {spec} is a directory; give a task file (.yaml, .jsonl or text)")
    name = path.name.lower()
    if name.endswith((".yaml", ".yml", ".json")):
        return Task(spec, _eval_task_texts(path))
    if name.endswith((".jsonl", ".jsonl.gz", ".jsonl.zst")):
        return Task(spec, _records_texts(path, spec))
    return Task(spec, ["".join(text_lines(path))])


class Index:
    """The 13-grams of the tasks: a sorted array of their hashes, and which tasks hold each."""

    def __init__(self, tasks: list[Task], n: int = NGRAM):
        self.n, self.names = n, [t.name for t in tasks]
        self.stats = {}
        grams, owners = [], []
        for i, task in enumerate(tasks):
            hashes, counts = word_hashes([clean_bytes(t) for t in task.texts])
            g, _ = ngram_hashes(hashes, counts, n)
            g = np.unique(g)
            grams.append(g)
            owners.append(np.full(len(g), i, dtype=np.int64))
            self.stats[task.name] = {"examples": len(task.texts), "too_short": int((counts < n).sum()),
                                     "ngrams": int(len(g)), "documents_hit": 0}
        g = np.concatenate(grams) if grams else np.zeros(0, dtype=np.uint64)
        o = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
        order = np.argsort(g, kind="stable")
        self.grams, self.owners = g[order], o[order]

    def positions(self, text: str) -> np.ndarray:
        """The word positions of every n-gram of ``text`` that a task has."""
        hashes, counts = word_hashes([clean_bytes(text)])
        grams, _ = ngram_hashes(hashes, counts, self.n)
        if not len(grams) or not len(self.grams):
            return np.zeros(0, dtype=np.int64)
        pos = np.searchsorted(self.grams, grams)
        return np.flatnonzero(self.grams[np.minimum(pos, len(self.grams) - 1)] == grams)

    def hits(self, texts: list[str]) -> list[tuple[int, set[int]] | None]:
        """For each text: None, or (the word position of its first shared 13-gram, the tasks it shares any with)."""
        hashes, counts = word_hashes([clean_bytes(t) for t in texts])
        grams, per_doc = ngram_hashes(hashes, counts, self.n)
        out: list[tuple[int, set[int]] | None] = [None] * len(texts)
        if not len(grams) or not len(self.grams):
            return out
        pos = np.searchsorted(self.grams, grams)
        found = self.grams[np.minimum(pos, len(self.grams) - 1)] == grams
        if not found.any():
            return out
        doc_of = np.repeat(np.arange(len(texts)), per_doc)
        first_gram = np.concatenate(([0], np.cumsum(per_doc)[:-1]))
        for g in np.flatnonzero(found):
            d = int(doc_of[g])
            lo = int(pos[g])
            hi = int(np.searchsorted(self.grams, grams[g], side="right"))
            tasks = set(self.owners[lo:hi].tolist())
            if out[d] is None:
                out[d] = (int(g - first_gram[d]), tasks)
            else:
                out[d][1].update(tasks)
        return out


def token_spans(text: str) -> list[tuple[int, int]]:
    """Where each of ``clean(text)``'s words is in ``text``: the whitespace-separated tokens that keep
    a character once punctuation is removed."""
    return [m.span() for m in re.finditer(r"\S+", text) if clean_bytes(m.group())]


def cut(text: str, positions: np.ndarray, n: int = NGRAM, window: int = WINDOW) -> list[str] | None:
    """GPT-3's cut: each shared n-gram (starting at the word ``positions``) is removed with ``window``
    characters on either side; the pieces left, less those shorter than ``window``, or None when the
    text falls into more than MAX_PIECES pieces (then it is dropped whole)."""
    spans = token_spans(text)
    if len(spans) != len(clean_bytes(text).split()):  # the words cannot be found again (never seen): drop it whole
        return None
    cuts: list[list[int]] = []
    for p in sorted(set(positions.tolist())):
        lo, hi = max(0, spans[p][0] - window), spans[p + n - 1][1] + window
        if cuts and lo <= cuts[-1][1]:
            cuts[-1][1] = max(cuts[-1][1], hi)
        else:
            cuts.append([lo, hi])
    pieces, at = [], 0
    for lo, hi in cuts:
        pieces.append(text[at:lo])
        at = hi
    pieces.append(text[at:])
    pieces = [p for p in pieces if p]
    if len(pieces) > MAX_PIECES:
        return None
    return [p for p in pieces if len(p) >= window]


def decider(index: Index, extra: dict, text_field: str = "text", cut_spans: bool = False, examples: int = 20):
    """The step's decide(batch): drop a record that shares a 13-gram with a task (with
    ``cut_spans``, cut those spans out instead, as GPT-3 did); count the tasks hit."""
    extra.setdefault("tasks", {name: dict(s) for name, s in index.stats.items()})
    extra.setdefault("hits", [])
    if cut_spans:
        for key in ("cut_documents", "pieces", "chars_cut"):
            extra.setdefault(key, 0)

    def decide(batch: list[Record]) -> list:
        verdicts: list = []
        for record, hit in zip(batch, index.hits([r.text for r in batch])):
            if hit is None:
                verdicts.append(None)
                continue
            at, tasks = hit
            names = sorted(index.names[t] for t in tasks)
            for name in names:
                extra["tasks"][name]["documents_hit"] += 1
            if len(extra["hits"]) < examples:
                words = clean_bytes(record.text).decode("utf-8").split()
                extra["hits"].append({"document": record.index, "tasks": names,
                                      "ngram": " ".join(words[at: at + index.n])})
            if not cut_spans:
                verdicts.append("task overlap")
                continue
            pieces = cut(record.text, index.positions(record.text), index.n)
            if pieces is None:
                verdicts.append(f"task overlap (more than {MAX_PIECES} pieces)")
            elif not pieces:
                verdicts.append("task overlap (no piece of 200 characters left)")
            else:
                fields = json.loads(record.raw)
                raws = [json.dumps({**fields, text_field: piece}, ensure_ascii=False) for piece in pieces]
                kept = sum(map(len, pieces))
                extra["cut_documents"] += 1
                extra["pieces"] += len(pieces)
                extra["chars_cut"] += len(record.text) - kept
                verdicts.append(Replace(raws, kept))
        return verdicts

    return decide


def decontaminate_files(inputs: list[str], out: str | Path, tasks: list[str] | None = None, part: str = "1/1",
                        text_field: str = "text", compression: str = "none", progress=None,
                        cut_spans: bool = False) -> dict:
    """`gptkit corpus decontaminate`: drop the documents sharing a 13-gram with ``tasks`` (default:
    every shipped task), or with ``cut_spans`` cut the shared spans out as GPT-3 did; the report."""
    from gptkit.corpus.step import base_report, check_out, part_lock, part_name, plan_for, run_step, write_report

    names = list(tasks) if tasks else shipped_tasks()
    loaded = [load_task_texts(name) for name in names]
    plan, index = plan_for(inputs, text_field, part)
    out = check_out(out, "decontaminate", inputs, index[1])
    ngrams = Index(loaded)
    digest = hashlib.sha256(ngrams.grams.tobytes() + ngrams.owners.tobytes()).hexdigest()[:32]
    settings = {"ngram": NGRAM, "tasks": names, "tasks_digest": digest, "cut": cut_spans}
    if cut_spans:
        settings.update(window=WINDOW, max_pieces=MAX_PIECES)
    extra: dict = {}
    with part_lock(out, part_name(index)):
        output, counts = run_step("decontaminate", plan, index, out, decider(ngrams, extra, text_field, cut_spans), settings, compression,
                                  extra, progress)
    report = base_report("decontaminate", plan, index, settings, counts, [output.name])
    write_report(out, "decontaminate", index, report)
    return report
