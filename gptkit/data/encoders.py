"""Text segments -> token ids for `prepare`, in worker threads.

GPT-2's vocabulary is encoded with tiktoken, built from the packaged encoder.json (tiktoken's ranks
are GPT-2's ids, since its merges were learned in id order): the same ids as the Hugging Face
pipeline of ``Tokenizer.gpt2()``, several times faster, and it releases the GIL, so threads scale.
Every other vocabulary (trained BPE, characters, GPT-1) is encoded by its own tokenizer.
"""

from __future__ import annotations

import functools
import hashlib
import json
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np

from gptkit.tokenizer import EOT, Tokenizer

# GPT-2's pre-tokenization regex, as released by OpenAI (encoder.py).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# Tokenizers whose ids are provably unchanged when a text is cut as gptkit.data.segments cuts it.
SPLITTABLE_KINDS = ("bytelevel-bpe", "char")

Encode = Callable[[list[str]], list[np.ndarray]]


def saved_files(tokenizer: Tokenizer) -> dict[str, bytes]:
    """The files ``tokenizer.save`` writes, by name: what a tokenizer is, for comparing two of them."""
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save(tmp)
        return {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir())}


def tokenizer_digest(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name, data in files.items():
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _byte_decoder() -> dict[int, int]:
    """A str.translate table from GPT-2's printable stand-in for each byte (as encoder.json spells
    tokens) to that byte's value."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {**{b: b for b in printable}, **{256 + i: b for i, b in enumerate(others)}}


def _packaged(name: str) -> str:
    return (resources.files("gptkit.tokenizer") / "assets" / name).read_text(encoding="utf-8")


def _merges(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#version")]


@functools.cache
def _gpt2_files() -> tuple[dict, list[str]]:
    return json.loads(_packaged("encoder.json")), _merges(_packaged("vocab.bpe"))


def is_gpt2(files: dict[str, bytes]) -> bool:
    """Whether saved tokenizer files hold GPT-2's vocabulary and merges (whatever special tokens were added)."""
    return "vocab.json" in files and "merges.txt" in files and _is_gpt2(files["vocab.json"], files["merges.txt"])


@functools.cache
def _is_gpt2(vocab_json: bytes, merges_txt: bytes) -> bool:
    vocab, merges = _gpt2_files()
    return json.loads(vocab_json) == vocab and _merges(merges_txt.decode("utf-8")) == merges


@functools.cache
def gpt2_tiktoken():
    """tiktoken's Encoding of the packaged GPT-2 files (never a downloaded copy)."""
    import tiktoken

    vocab, _ = _gpt2_files()
    decoder = _byte_decoder()
    ranks = {token.translate(decoder).encode("latin-1"): i for token, i in vocab.items() if token != EOT}
    return tiktoken.Encoding("gptkit-gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={EOT: vocab[EOT]})


def make_encoder(tokenizer: Tokenizer, files: dict[str, bytes]) -> tuple[Encode, bool]:
    """(encode, splittable): a thread-safe function from texts to uint32 id arrays, with
    "<|endoftext|>" in a text encoded as plain text; and whether documents may be cut into segments."""
    if is_gpt2(files):
        encoding = gpt2_tiktoken()
        return (lambda texts: [encoding.encode_to_numpy(t, disallowed_special=()) for t in texts]), True
    tokenizer.encode("", allow_special=False)  # builds any lazily made pipeline before threads share it

    def encode(texts: list[str]) -> list[np.ndarray]:
        return [np.asarray(ids, dtype=np.uint32) for ids in tokenizer.encode_batch(texts, allow_special=False)]

    return encode, tokenizer.kind in SPLITTABLE_KINDS
