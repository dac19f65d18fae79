"""Which device and precision a command runs on: one answer for training, sampling and evaluation."""

from __future__ import annotations

from typing import get_args

import torch

from gptkit.errors import GptkitError
from gptkit.train_config import Precision

PRECISIONS = get_args(Precision)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; a named device must exist here."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GptkitError(f"--device {name!r} is not a device; use auto, cpu, cuda, cuda:1 or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GptkitError(f"--device {name}: no CUDA GPU is available here; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise GptkitError(f"--device {name}: this machine has {torch.cuda.device_count()} GPU(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise GptkitError(f"--device {name}: MPS is not available here; use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise GptkitError(f"--device {name}: gptkit runs on cpu, cuda or mps")
    return device


def autocast_dtype(device: torch.device, name: str) -> torch.dtype | None:
    """The autocast dtype for training, or None for plain fp32. Master weights always stay fp32."""
    if name not in PRECISIONS:
        raise GptkitError(f"--dtype must be one of {', '.join(PRECISIONS)}; got {name!r}")
    if name == "auto":
        if device.type != "cuda":
            return None
        name = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def enable_tf32(device: torch.device) -> None:
    """fp32 matmuls on tensor cores (TF32): a process-wide setting, made where training starts."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
