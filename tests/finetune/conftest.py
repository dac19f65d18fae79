"""A tiny character-level "pretrained" model and small slices of the bundled Shakespeare task sets."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from gptkit.data import shakespeare
from gptkit.finetune import bundled_task
from gptkit.tokenizer import Tokenizer
from tests.conftest import tiny_model

SETS = {"classify": "play", "entail": "reply", "similarity": "speaker", "choice": "nextline"}


@pytest.fixture(scope="session")
def char_tokenizer() -> Tokenizer:
    return Tokenizer.char("".join(w["text"] for w in shakespeare()))


@pytest.fixture(scope="session")
def base_model(tmp_path_factory, char_tokenizer) -> Path:
    """A randomly initialised tiny GPT (context 64) saved as a model directory."""
    out = tmp_path_factory.mktemp("base")
    tiny_model(vocab_size=char_tokenizer.vocab_size).save_pretrained(out, char_tokenizer)
    return out


def bundled_rows(name: str, split: str, n: int) -> list[dict]:
    with gzip.open(bundled_task(name, split), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line, _ in zip(f, range(n))]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def task_files(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """(train, valid) files of 64 and 32 real examples per task, plus a regression variant of similarity."""
    out = tmp_path_factory.mktemp("tasks")
    files = {}
    for task, name in SETS.items():
        files[task] = tuple(write_jsonl(out / f"{name}_{split}.jsonl", bundled_rows(name, split, n))
                            for split, n in (("train", 64), ("valid", 32)))
    scored = {split: [{"a": r["a"], "b": r["b"], "score": float(r["label"] == "same")} for r in bundled_rows("speaker", split, n)]
              for split, n in (("train", 64), ("valid", 32))}
    files["regression"] = tuple(write_jsonl(out / f"scored_{s}.jsonl", rows) for s, rows in scored.items())
    return files
