"""`gptkit prepare` and `gptkit tokenizer train` from the command line: the end summary, `--part`
directories trained on as one corpus, and every bad setting as one line naming the problem and the fix."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from gptkit.cli.main import cli
from gptkit.data import Corpus, shakespeare


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    for work in shakespeare()[:4]:
        (folder / f"{work['name']}.txt").write_text(work["text"][:40_000], encoding="utf-8")
    (folder / "more.jsonl").write_text("".join(json.dumps({"text": f"speech {i}\n"}) + "\n" for i in range(30)))
    return folder


def test_prepare_prints_a_summary(corpus, tmp_path):
    result = run("prepare", "--input", str(corpus), "--tokenizer", "char", "--out", str(tmp_path), "--quiet")
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "meta.json").read_text())
    train, val = meta["splits"]["train"], meta["splits"]["val"]
    assert train["documents"] + val["documents"] == 34 and val["documents"] == 2
    assert f"train: {train['documents']:,} documents, {train['tokens']:,} tokens" in result.stdout
    assert "tokens/byte" in result.stdout and "MB/s" in result.stdout and f"vocabulary {meta['vocab_size']}" in result.stdout


def test_two_parts_train_as_one_corpus(corpus, tmp_path):
    parts = [tmp_path / "part1", tmp_path / "part2"]
    for i, out in enumerate(parts, 1):
        result = run("prepare", "--input", str(corpus), "--tokenizer", "char", "--part", f"{i}/2", "--out", str(out),
                     "--val-fraction", "0.2", "--quiet")
        assert result.exit_code == 0, result.output
    metas = [json.loads((p / "meta.json").read_text()) for p in parts]
    assert sum(m["splits"]["train"]["documents"] + m["splits"]["val"]["documents"] for m in metas) == 34
    assert metas[0]["vocab_size"] == metas[1]["vocab_size"]  # one vocabulary: the characters of all inputs
    Corpus(parts)  # the same tokenizer
    result = run("pretrain", "--data", str(parts[0]), "--data", str(parts[1]), "--out", str(tmp_path / "run"),
                 "--preset", "tiny", "--max-steps", "3", "--batch-size", "2", "--block-size", "16", "--eval-every", "0",
                 "--eval-batches", "1", "--sample-tokens", "0", "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "train_config.json").read_text())["data"] == [str(p) for p in parts]


@pytest.mark.parametrize("flags, fragments", [
    (["--shard-tokens", "0"], ["--shard-tokens must be at least 1, got 0"]),
    (["--val-fraction", "-1"], ["--val-fraction must be at least 0 and below 1", "got -1"]),
    (["--val-fraction", "1"], ["--val-fraction must be at least 0 and below 1"]),
    (["--workers", "0"], ["--workers must be at least 1, got 0"]),
    (["--part", "3/2"], ["--part must be I/N with 1 <= I <= N"]),
])
def test_bad_prepare_settings(corpus, tmp_path, flags, fragments):
    assert_one_line_error(run("prepare", "--input", str(corpus), *flags, "--out", str(tmp_path / "out"), "--quiet"), *fragments)


@pytest.mark.parametrize("flags, fragments", [
    (["--vocab-size", "300"], ["the corpus is empty"]),
    (["--vocab-size", "300", "--min-frequency", "-1"], ["--min-frequency must be between 0 and"]),
    (["--vocab-size", "100000000000"], ["--vocab-size must be between 257", "16,777,216"]),
    (["--vocab-size", "100"], ["--vocab-size must be between 257"]),
])
def test_bad_tokenizer_training(tmp_path, flags, fragments):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "text.txt").write_text("some text to learn from")
    source = "empty.txt" if "the corpus is empty" in fragments else "text.txt"
    result = run("tokenizer", "train", "--input", str(tmp_path / source), *flags, "--out", str(tmp_path / "tok"))
    assert_one_line_error(result, *fragments)


@pytest.mark.parametrize("tokenizer", ["char", "gpt2"])
def test_prepare_and_tokenizer_train_never_load_pytorch(tmp_path, tokenizer):
    # They only read and write files: without PyTorch's import (seconds) a small job takes well under one.
    (tmp_path / "one.txt").write_text("To be, or not to be, that is the question.\n")
    code = ("import sys\nfrom gptkit.cli.main import cli\n"
            f"cli(['prepare', '--input', 'one.txt', '--tokenizer', '{tokenizer}', '--out', 'data', '--quiet'], "
            "standalone_mode=False)\n"
            "cli(['tokenizer', 'train', '--input', 'one.txt', '--vocab-size', '300', '--out', 'tok'], standalone_mode=False)\n"
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))[:5]\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "meta.json").is_file() and (tmp_path / "tok" / "tokenizer_config.json").is_file()
