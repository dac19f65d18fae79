"""Crash-safe file writes and checked safetensors reads: no run killed mid-write loses data."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from gptkit.errors import GptkitError


def _file_mode() -> int:
    """0666 less the process umask: the mode open() gives a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


def fsync_dir(path: str | Path) -> None:
    """Make a rename inside ``path`` durable (POSIX); a no-op where directories cannot be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    A crash at any moment leaves either the old file or the new one, never a torn mix. A symlink at
    ``path`` is written through (its target is replaced, the link stays); anything there that is not
    a regular file (a directory, a FIFO, a device) is refused, never replaced.
    """
    path = output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600; the result should be as readable as any file the user writes
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise GptkitError(f"no space left to write {path} ({e.strerror}); it is unchanged: free some space or "
                          "write somewhere else") from None
    finally:
        tmp.unlink(missing_ok=True)


def output_file(path: str | Path) -> Path:
    """Where a write to ``path`` lands: the target of a symlink, and never something not a file."""
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():
        raise GptkitError(f"{path} exists and is not a regular file: gptkit will not replace it; "
                          "move it away or write somewhere else")
    return path


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_text(path: str | Path, fix: str = "restore it or write it again") -> str:
    """A UTF-8 file gptkit or the user wrote; anything else is a one-line error saying ``fix``."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise GptkitError(f"{path} is not UTF-8 text (byte {e.start}); {fix}") from None
    except IsADirectoryError:
        raise GptkitError(f"{path} is a directory, not a file") from None


def read_json(path: str | Path, fix: str = "restore it or write it again", expect: type = dict):
    """The JSON value of a file (an object unless ``expect`` says otherwise), or a one-line error."""
    try:
        value = json.loads(read_text(path, fix))
    except json.JSONDecodeError as e:
        raise GptkitError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}); {fix}") from None
    if not isinstance(value, expect):
        kind = {dict: "an object", list: "an array"}.get(expect, expect.__name__)
        raise GptkitError(f"{path} must hold a JSON {kind}, not {type(value).__name__}; {fix}")
    return value


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata=metadata)
        except SafetensorError as e:  # a full disk among them; the file it replaces is untouched
            raise GptkitError(f"cannot write {path} ({e}); it is unchanged: free some space or write somewhere else") from None


# safetensors dtype names -> torch dtypes (the formats checkpoints use)
SAFETENSORS_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                      "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
                      "U8": torch.uint8, "BOOL": torch.bool}


def _corrupt(path: Path, why: str) -> GptkitError:
    return GptkitError(f"{path} is truncated or corrupt ({why}); restore it or use an earlier checkpoint")


def iter_tensors(path: str | Path, device: str | torch.device = "cpu",
                 dtype: torch.dtype | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) of a safetensors file, one at a time, read into memory we own.

    safetensors' own loaders memory-map the file; pages a conversion touches then stay resident
    beside the converted copy, doubling peak memory on big checkpoints. Plain reads, one tensor at a
    time, keep the peak at the weights plus one tensor. Floating-point tensors are cast to ``dtype``.
    """
    path = Path(path)
    if not path.is_file():
        raise GptkitError(f"{path} not found: the checkpoint is incomplete")
    size = path.stat().st_size
    with open(path, "rb") as f:
        try:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n)) if 8 + n <= size else None
        except (struct.error, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise _corrupt(path, f"unreadable header: {e}") from None
        if not isinstance(header, dict):
            raise _corrupt(path, "unreadable header")
        header.pop("__metadata__", None)
        entries = sorted(header.items(), key=lambda item: item[1]["data_offsets"][0])
        # Tensors that will be cast are read into one reused buffer, so no temporaries pile up.
        largest = max((info["data_offsets"][1] - info["data_offsets"][0] for _, info in entries), default=0)
        staging = torch.empty(largest, dtype=torch.uint8) if dtype is not None else None
        for name, info in entries:
            start, end = info["data_offsets"]
            if 8 + n + end > size:
                raise _corrupt(path, f"tensor {name} ends at byte {8 + n + end} of a {size}-byte file")
            source = SAFETENSORS_DTYPES[info["dtype"]]
            cast = dtype is not None and source.is_floating_point and source != dtype
            raw = staging[: end - start] if cast else torch.empty(end - start, dtype=torch.uint8)
            f.seek(8 + n + start)
            f.readinto(memoryview(raw.numpy()))
            tensor = raw.view(source).view(info["shape"])
            yield name, tensor.to(device=device, dtype=dtype if cast else source, copy=cast)


def load_tensors(path: str | Path, device: str | torch.device = "cpu",
                 dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    return dict(iter_tensors(path, device, dtype))


def read_metadata(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError) as e:
        raise GptkitError(f"{path} is truncated or corrupt ({e}); restore it or use an earlier checkpoint") from None
