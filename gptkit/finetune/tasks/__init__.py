"""Small labelled sets derived from the bundled Shakespeare (built by scripts/build_shakespeare_tasks.py)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from gptkit.errors import GptkitError

# name -> the task type it exercises
BUNDLED = {"play": "classify", "reply": "entail", "speaker": "similarity", "nextline": "choice"}
SPLITS = ("train", "valid", "test")


def bundled_task(name: str, split: str) -> Path:
    """Path of a bundled set, e.g. bundled_task("play", "train")."""
    if name not in BUNDLED or split not in SPLITS:
        raise GptkitError(f"no bundled set {name}/{split}; sets: {', '.join(BUNDLED)}; splits: {', '.join(SPLITS)}")
    return Path(str(resources.files("gptkit.finetune.tasks") / f"{name}_{split}.jsonl.gz"))


def task_file(spec: str | Path, split: str) -> Path:
    """What --train, --valid or --input names: a file, or a bundled set by name ("play") for that split,
    as --data shakespeare names the bundled corpus."""
    if str(spec) in BUNDLED and not Path(spec).exists():
        return bundled_task(str(spec), split)
    return Path(spec)
