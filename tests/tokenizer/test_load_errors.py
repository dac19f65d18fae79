"""Tokenizer.load on directories that hold no tokenizer, or a broken one: a GptkitError that says what."""

from __future__ import annotations

import json

import pytest

from gptkit.errors import GptkitError
from gptkit.tokenizer import Tokenizer


def test_missing_directory(tmp_path):
    with pytest.raises(GptkitError, match="tokenizer_config.json is missing"):
        Tokenizer.load(tmp_path / "nope")


def test_directory_without_config(tmp_path):
    (tmp_path / "vocab.json").write_text("{}")
    with pytest.raises(GptkitError, match=r"no tokenizer in .*tokenizer_config.json is missing"):
        Tokenizer.load(tmp_path)


def test_config_that_is_not_json(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text("{oops")
    with pytest.raises(GptkitError, match="not valid JSON"):
        Tokenizer.load(tmp_path)


@pytest.mark.parametrize("config", [{"gptkit_tokenizer": "wordpiece"}, {}, ["char"], "char"])
def test_unknown_kind(tmp_path, config):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(GptkitError, match="unknown tokenizer kind") as e:
        Tokenizer.load(tmp_path)
    assert "tokenizer_config.json" in str(e.value)
    assert "known: " in str(e.value) and "char" in str(e.value) and "bytelevel-bpe" in str(e.value)


def test_bpe_files_missing(tmp_path):
    Tokenizer.train_bpe(["some text to learn from"], 260).save(tmp_path)
    (tmp_path / "merges.txt").unlink()
    with pytest.raises(GptkitError, match="merges.txt is missing"):
        Tokenizer.load(tmp_path)


def test_bpe_files_corrupt(tmp_path):
    Tokenizer.train_bpe(["some text to learn from"], 260).save(tmp_path)
    (tmp_path / "vocab.json").write_text("[1, 2")
    with pytest.raises(GptkitError, match="cannot read the BPE files"):
        Tokenizer.load(tmp_path)
