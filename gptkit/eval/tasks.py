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

import string
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from gptkit.data.documents import iter_jsonl
from gptkit.errors import GptkitError
from gptkit.eval.metrics import GENERATION_METRICS
from gptkit.io import read_text

METRICS = {"choice": {"acc", "acc_norm"}, "last_word": {"acc", "ppl"}, "generate": GENERATION_METRICS}


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
    for key in ("name", "type", "data"):
        if key not in raw:
            raise GptkitError(f"task file {path}: missing field {key!r}")
    known = set(TaskSpec.__dataclass_fields__) - {"source"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise GptkitError(f"task file {path}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if raw["type"] not in METRICS:
        raise GptkitError(f"task file {path}: field 'type' must be one of {', '.join(METRICS)}, got {raw['type']!r}")
    metrics = raw.setdefault("metrics", sorted(METRICS[raw["type"]]))
    bad = [m for m in metrics if m not in METRICS[raw["type"]]]
    if bad:
        raise GptkitError(f"task file {path}: field 'metrics' has unknown metric(s) {', '.join(bad)} for a "
                          f"{raw['type']} task; use {', '.join(sorted(METRICS[raw['type']]))}")
    raw["data"] = path.parent / raw["data"]
    if raw.get("train"):
        raw["train"] = path.parent / raw["train"]
    return TaskSpec(**raw, source=path)


def read_examples(spec: TaskSpec, path: Path) -> list[dict]:
    """The examples of a JSONL file, each checked for the fields the task uses."""
    if not path.is_file():
        raise GptkitError(f"task {spec.source}: field 'data'/'train' names {path}, which does not exist")
    needed = spec.fields() | {spec.answer} | ({spec.choices} if spec.type == "choice" else set())
    examples = []
    for line_no, example in iter_jsonl(read_text(path, fix="save the data file as UTF-8").splitlines(), str(path)):
        if not isinstance(example, dict):
            raise GptkitError(f"{path}:{line_no}: each line must be a JSON object")
        missing = sorted(needed - set(example))
        if missing:
            raise GptkitError(f"{path}:{line_no}: missing field(s) {', '.join(missing)} used by task {spec.name}")
        examples.append(example)
    if not examples:
        raise GptkitError(f"{path} holds no examples")
    return examples
