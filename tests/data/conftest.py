"""Shared fixture for the data tests: a small character tokenizer."""

from __future__ import annotations

import string

import pytest

from gptkit.tokenizer import Tokenizer

ALPHABET = string.printable + "床前明月光，疑是地上霜。é"


@pytest.fixture
def char_tok() -> Tokenizer:
    return Tokenizer.char(ALPHABET)
