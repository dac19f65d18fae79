"""Fixtures for the tokenizer tests: gptkit's GPT-2 tokenizer and a tiktoken reference built from
the very same packaged files (never tiktoken's downloaded encoding: the tests run offline)."""

from __future__ import annotations

import os
from importlib import resources

import pytest

from gptkit.data import shakespeare
from gptkit.tokenizer import EOT, Tokenizer
from gptkit.tokenizer.bpe import GPT2_DIGESTS

# GPT-2's pre-tokenization regex, as released by OpenAI (encoder.py).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@pytest.fixture(scope="session")
def gpt2() -> Tokenizer:
    return Tokenizer.gpt2()


@pytest.fixture(scope="session")
def reference():
    """tiktoken's Encoding of the packaged encoder.json + vocab.bpe (gptkit checks their digests on load)."""
    import tiktoken  # a test dependency: missing, the comparison must fail, not be skipped
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    assets = resources.files("gptkit.tokenizer") / "assets"
    saved = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = ""  # read the files directly; never cache or reuse a cached copy
    try:
        with resources.as_file(assets) as folder:
            ranks = data_gym_to_mergeable_bpe_ranks(
                vocab_bpe_file=str(folder / "vocab.bpe"),
                encoder_json_file=str(folder / "encoder.json"),
                vocab_bpe_hash=GPT2_DIGESTS["vocab.bpe"],
                encoder_json_hash=GPT2_DIGESTS["encoder.json"],
            )
    finally:
        if saved is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = saved
    return tiktoken.Encoding(
        name="gpt2-packaged", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={EOT: 50256},
    )


@pytest.fixture(scope="session")
def works() -> dict[str, str]:
    """The bundled Shakespeare: work name -> text."""
    return {w["name"]: w["text"] for w in shakespeare()}
