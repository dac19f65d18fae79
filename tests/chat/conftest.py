"""A tiny dialogue model (English and Chinese characters), trained for a few steps once per session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DIALOGUES = [
    ["Good morrow, my lord.", "Good morrow to you, sir.", "What news?"],
    ["你好，今天天气怎么样？", "今天天气很好。", "我们去公园吧。"],
    ["Where is the king?", "He is in the garden.", "I will go to him."],
]


def tiny_train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["dialogue", "train", "--data", str(data), "--out", str(out), "--preset", "tiny", "--max-steps", "3",
            "--batch-size", "4", "--val-fraction", "0", "--no-common-word-filter", "--quiet", *extra]


@pytest.fixture(scope="session")
def dialogue_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dialogues") / "talk.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in DIALOGUES), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def chat_models(dialogue_file, tmp_path_factory) -> tuple[Path, Path]:
    """(forward run, backward run) trained through the CLI on the same character vocabulary."""
    from click.testing import CliRunner

    from gptkit.cli.main import cli

    root = tmp_path_factory.mktemp("chat_models")
    runs = root / "forward", root / "backward"
    for run, extra in zip(runs, ([], ["--reverse"])):
        result = CliRunner().invoke(cli, tiny_train_args(dialogue_file, run, *extra), catch_exceptions=False)
        assert result.exit_code == 0, result.output
    return runs
