"""Safetensors files written atomically and read back checked: a truncated or corrupt file is a
one-line error naming it, never a crash inside the loader."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from gptkit.errors import GptkitError
from gptkit.io import atomic_path


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
