"""Token shards on disk: a 64-byte header (magic, format version, bytes per token, token count,
vocabulary size) followed by the tokens as uint16 or uint32. The header is checked on every read,
so a truncated or foreign file is reported, never silently trained on."""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import numpy as np

from gptkit.errors import GptkitError
from gptkit.io import fsync_dir

MAGIC = b"GPTKSHRD"
VERSION = 1
HEADER = struct.Struct("<8sIIQQ")  # magic, version, itemsize, n_tokens, vocab_size
HEADER_BYTES = 64
READ_BLOCK = 1 << 24


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


class ShardWriter:
    """One shard written as tokens arrive, so no shard is ever held in memory whole.

    The tokens stream into ``.NAME.tmp`` beside ``path``; ``close()`` writes the header, syncs and
    renames it into place. A process killed before that leaves no file under ``path``.
    """

    def __init__(self, path: str | Path, vocab_size: int):
        self.path = Path(path)
        self.vocab_size, self.dtype = vocab_size, token_dtype(vocab_size)
        self.count = 0
        self._digest = hashlib.sha256()
        self._tmp = self.path.with_name(f".{self.path.name}.tmp")
        self._file = open(self._tmp, "wb")  # noqa: SIM115 (closed by close() or abort())
        self._file.write(bytes(HEADER_BYTES))

    def write(self, tokens: np.ndarray) -> None:
        tokens = np.asarray(tokens)
        if tokens.size and (int(tokens.max()) >= self.vocab_size or int(tokens.min()) < 0):
            bad = int(tokens.max()) if int(tokens.max()) >= self.vocab_size else int(tokens.min())
            raise ValueError(f"token id {bad} is outside the vocabulary of {self.vocab_size}")
        data = tokens.astype(self.dtype, copy=False).tobytes()
        self._file.write(data)
        self._digest.update(data)
        self.count += tokens.size

    def close(self) -> dict:
        """Finish the shard: its token count and the SHA-256 of its tokens (the bytes after the header)."""
        self._file.seek(0)
        self._file.write(HEADER.pack(MAGIC, VERSION, self.dtype.itemsize, self.count, self.vocab_size))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, self.path)
        fsync_dir(self.path.parent)
        return {"name": self.path.name, "tokens": self.count, "sha256": self._digest.hexdigest()}

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


def write_shard(path: str | Path, tokens: np.ndarray, vocab_size: int) -> dict:
    """Write ``tokens`` as one shard; returns its entry for meta.json (name, tokens, sha256)."""
    shard = ShardWriter(path, vocab_size)
    try:
        shard.write(tokens)
    except BaseException:
        shard.abort()
        raise
    return shard.close()


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


def shard_sha256(path: str | Path) -> str:
    """SHA-256 of a shard's tokens, as meta.json records it (same as `tail -c +65 FILE | sha256sum`)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(HEADER_BYTES)
        while block := f.read(READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()
