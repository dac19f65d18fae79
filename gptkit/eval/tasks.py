"""Tasks as data: a small YAML/JSON file names the examples, the prompt template, the answer and
the metrics, so users add tasks without writing code.

    name: shakespeare-nextline
    type: choice                 # choice | last_word | generate
    data: nextline.jsonl         # the examples to evaluate (path relative to this file)
    train: nextline_train.jsonl  # where few-shot examples are drawn from (default: data, minus the query)
    description: Which line comes next?
    prompt: "{context}\\n"        # Python format string over each example's fields
    choices: choices             # choice: field holding the list of candidate continuations
    answer: answer               # choice: index of the right one; last_word: the text; generate: the reference
    metrics: [acc, acc_norm]
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from gptkit.data.documents import expect, iter_jsonl, repeats
from gptkit.errors import GptkitError
from gptkit.eval.metrics import GENERATION_METRICS
from gptkit.io import read_text

METRICS = {"choice": {"acc", "acc_norm"}, "last_word": {"acc", "ppl"}, "generate": GENERATION_METRICS}
# What each field of a task file may hold (see gptkit.data.documents.KINDS); the first three are required.
FIELDS = {"name": "a non-empty string", "type": "a non-empty string", "data": "a non-empty string",
          "train": "a non-empty string", "description": "a string", "prompt": "a string",
          "answer": "a non-empty string", "choices": "a non-empty string", "separator": "a string",
          "answer_prefix": "a string", "metrics": "a non-empty list of non-empty strings",
          "stop": "a list of non-empty strings", "max_new_tokens": "a whole number >= 1"}


@dataclass
class TaskSpec:
    name: str
    type: str
    data: Path
    prompt: str = "{text}"
    answer: str = "answer"
    choices: str = "choices"
    train: Path | None = None
    description: str = ""
    separator: str = "\n\n"  # between few-shot examples
    answer_prefix: str = " "  # put between the prompt and an answer or choice
    metrics: list[str] = field(default_factory=list)
    stop: list[str] = field(default_factory=lambda: ["\n"])
    max_new_tokens: int = 32
    source: Path = Path(".")

    def fields(self) -> set[str]:
        """The example fields the prompt template uses."""
        return {name for _, name, _, _ in string.Formatter().parse(self.prompt) if name}

    def inputs(self) -> set[str]:
        """The example fields the model is shown: the prompt's, and a choice task's choices."""
        return self.fields() | ({self.choices} if self.type == "choice" else set())


def bundled_tasks() -> dict[str, Path]:
    folder = resources.files("gptkit.eval") / "tasks"
    return {p.name.removesuffix(".yaml"): Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml")}


def load_task(name_or_path: str | Path) -> TaskSpec:
    path = Path(name_or_path)
    if not path.is_file():
        tasks = bundled_tasks()
        if str(name_or_path) not in tasks:
            raise GptkitError(f"no task file {name_or_path} and no bundled task of that name; bundled: {', '.join(sorted(tasks))}")
        path = tasks[str(name_or_path)]
    try:
        raw = yaml.safe_load(read_text(path, fix="save the task file as UTF-8"))  # YAML is a superset of JSON
    except yaml.YAMLError as e:
        raise GptkitError(f"task file {path} cannot be parsed: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise GptkitError(f"task file {path} must hold a mapping of fields")
    check_fields(raw, path)
    raw["data"] = path.parent / raw["data"]
    if "train" in raw:
        raw["train"] = path.parent / raw["train"]
    return TaskSpec(**raw, source=path)


def check_fields(raw: dict, path: Path) -> None:
    """Every field of a task file of the kind it must be, its type and metrics known, its prompt a
    template of named fields; fills in the default metrics."""
    for key in ("name", "type", "data"):
        if key not in raw:
            raise GptkitError(f"task file {path}: missing field {key!r}")
    unknown = sorted(str(key) for key in raw if key not in FIELDS)
    if unknown:
        raise GptkitError(f"task file {path}: unknown field(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(FIELDS))}")
    for key, value in raw.items():
        expect(value, FIELDS[key], f"task file {path}: field {key!r}")
    if raw["type"] not in METRICS:
        raise GptkitError(f"task file {path}: field 'type' must be one of {', '.join(METRICS)}, got {raw['type']!r}")
    metrics = raw.setdefault("metrics", sorted(METRICS[raw["type"]]))
    bad = [m for m in metrics if m not in METRICS[raw["type"]]]
    if bad:
        raise GptkitError(f"task file {path}: field 'metrics' has unknown metric(s) {', '.join(bad)} for a "
                          f"{raw['type']} task; use {', '.join(sorted(METRICS[raw['type']]))}")
    _check_template(raw.get("prompt", TaskSpec.prompt), path)


def _check_template(prompt: str, path: Path) -> None:
    """A format string whose every placeholder names an example field, e.g. {context}."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(prompt) if name is not None]
    except ValueError as e:
        raise GptkitError(f"task file {path}: field 'prompt' is not a template ({e}); "
                          "write {{ and }} for a literal brace") from None
    bad = [name for name in names if not name.isidentifier()]
    if bad:
        raise GptkitError(f"task file {path}: field 'prompt' has placeholder {{{bad[0]}}}, which names no field; "
                          "write {field} with a field of the examples, e.g. {context}")


def read_examples(spec: TaskSpec, path: Path, scored: bool = True) -> list[dict]:
    """The examples of a JSONL file, each checked for the fields the task uses; in a ``scored`` file
    (not a pool of few-shot examples) no input twice."""
    if not path.is_file():
        raise GptkitError(f"task {spec.source}: field 'data'/'train' names {path}, which does not exist")
    rows = list(iter_jsonl(read_text(path, fix="save the data file as UTF-8").splitlines(), str(path)))
    for line_no, example in rows:
        check_example(spec, example, f"{path}:{line_no}")
    for line_no, first in repeats((_input(spec, example), line_no) for line_no, example in rows if scored):
        raise GptkitError(f"{path}:{line_no}: the same input as line {first}; remove one (it would be scored twice)")
    if not rows:
        raise GptkitError(f"{path} holds no examples")
    return [example for _, example in rows]


def check_example(spec: TaskSpec, example, where: str) -> None:
    """One line of task data: the fields the task reads, of their kinds; a choice answer that indexes
    a choice; a prompt that renders."""
    if not isinstance(example, dict):
        raise GptkitError(f"{where}: each line must be a JSON object")
    missing = sorted((spec.inputs() | {spec.answer}) - set(example))
    if missing:
        raise GptkitError(f"{where}: missing field(s) {', '.join(missing)} used by task {spec.name}")
    for name in spec.fields():
        expect(example[name], "a string", f"{where}: field {name!r}")
    try:
        spec.prompt.format(**example)
    except (ValueError, TypeError) as e:  # a format spec the text does not take, e.g. {context:d}
        raise GptkitError(f"{where}: the task's prompt cannot be filled in ({e})") from None
    if spec.type != "choice":
        expect(example[spec.answer], "a non-empty string", f"{where}: field {spec.answer!r}")
        return
    choices = expect(example[spec.choices], "a list of at least two non-empty strings", f"{where}: field {spec.choices!r}")
    answer = expect(example[spec.answer], "a whole number", f"{where}: field {spec.answer!r}")
    if not 0 <= answer < len(choices):
        raise GptkitError(f"{where}: answer {answer} is not the index of one of its {len(choices)} choices (0-based)")


def _input(spec: TaskSpec, example: dict) -> tuple:
    """An example's inputs as a key: two examples with the same key are the same question."""
    return tuple((name, json.dumps(example[name])) for name in sorted(spec.inputs()))
