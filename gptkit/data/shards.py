"""Token shards on disk: a 64-byte header (magic, format version, bytes per token, token count,
vocabulary size) followed by the tokens as uint16 or uint32. The header is checked on every read,
so a truncated or foreign file is reported, never silently trained on."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from gptkit.errors import GptkitError
from gptkit.io import atomic_path

MAGIC = b"GPTKSHRD"
VERSION = 1
HEADER = struct.Struct("<8sIIQQ")  # magic, version, itemsize, n_tokens, vocab_size
HEADER_BYTES = 64


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


def write_shard(path: str | Path, tokens: np.ndarray, vocab_size: int) -> None:
    dtype = token_dtype(vocab_size)
    tokens = np.asarray(tokens)
    if tokens.size and (int(tokens.max()) >= vocab_size or int(tokens.min()) < 0):
        bad = int(tokens.max()) if int(tokens.max()) >= vocab_size else int(tokens.min())
        raise ValueError(f"token id {bad} is outside the vocabulary of {vocab_size}")
    header = HEADER.pack(MAGIC, VERSION, dtype.itemsize, tokens.size, vocab_size).ljust(HEADER_BYTES, b"\0")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(header)
        f.write(tokens.astype(dtype, copy=False).tobytes())


def read_header(path: str | Path) -> tuple[np.dtype, int, int]:
    """(dtype, n_tokens, vocab_size) of a shard, after checking magic, version and size."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(HEADER_BYTES)
    except OSError as e:
        raise GptkitError(f"cannot read shard {path}: {e.strerror}") from None
    if len(raw) < HEADER_BYTES:
        raise GptkitError(f"shard {path} is truncated (no complete header); run 'gptkit prepare' again")
    magic, version, itemsize, n_tokens, vocab_size = HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise GptkitError(f"{path} is not a gptkit token shard (bad magic); run 'gptkit prepare' on your text")
    if version != VERSION:
        raise GptkitError(f"shard {path} has format version {version}, this gptkit reads {VERSION}; prepare it again")
    if itemsize not in (2, 4):
        raise GptkitError(f"shard {path} has a corrupt header (itemsize {itemsize})")
    expected = HEADER_BYTES + n_tokens * itemsize
    actual = path.stat().st_size
    if actual != expected:
        raise GptkitError(
            f"shard {path} is truncated or corrupt: {actual} bytes on disk, header promises {expected}; "
            "run 'gptkit prepare' again"
        )
    return np.dtype(np.uint16 if itemsize == 2 else np.uint32), n_tokens, vocab_size


def open_shard(path: str | Path) -> np.memmap:
    """The shard's tokens, memory-mapped (read-only)."""
    dtype, n_tokens, _ = read_header(path)
    if n_tokens == 0:
        return np.zeros(0, dtype=dtype)  # np.memmap cannot map zero bytes
    return np.memmap(path, dtype=dtype, mode="r", offset=HEADER_BYTES, shape=(n_tokens,))
