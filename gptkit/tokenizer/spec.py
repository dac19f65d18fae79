"""What a --tokenizer flag names, resolved without loading PyTorch unless a model directory asks for it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from gptkit.errors import GptkitError
from gptkit.tokenizer.base import Tokenizer


def tokenizer_from_spec(spec: str, texts: Iterable[str] = ()) -> Tokenizer:
    """"char" (a vocabulary of the characters of ``texts``), "gpt2", or a directory holding a
    tokenizer (a tokenizer, model or run directory, read by gptkit.checkpoint)."""
    if spec == "char":
        return Tokenizer.char("".join(texts))
    if spec == "gpt2":
        return Tokenizer.gpt2()
    if Path(spec).expanduser().is_dir():
        from gptkit.checkpoint import load_tokenizer  # a model or run directory: PyTorch's world

        return load_tokenizer(spec)
    raise GptkitError(f"unknown tokenizer {spec!r}: use char, gpt2 or a directory with tokenizer files")
