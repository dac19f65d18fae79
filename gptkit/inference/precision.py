"""The precision a model runs in for inference (--dtype, --quantize), and what ``auto`` picks."""

from __future__ import annotations

import torch

from gptkit.errors import GptkitError
from gptkit.model.quantize import int8_supported

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
QUANTIZE = ("auto", "none", "int8")


def pick_precision(device: torch.device, dtype: str = "auto", quantize: str = "auto",
                   exact: bool = False) -> tuple[torch.dtype, str | None]:
    """(dtype, quantize) for ``device``; ``auto`` is the fastest option at fp32-level quality there.

    On CUDA that is bf16 (fp16 on GPUs without it). On the CPU it is fp32 with int8 weights (about
    3x fp32 decoding on 2 AVX2 cores, for +0.5% perplexity; bf16 weights give 1.7x, and prefill
    6x slower, without bf16 arithmetic on the CPU).
    ``exact`` is for numbers reported as results (eval): plain fp32 everywhere.
    """
    if dtype not in ("auto", *DTYPES):
        raise GptkitError(f"--dtype must be one of auto, {', '.join(DTYPES)}; got {dtype!r}")
    if quantize not in QUANTIZE:
        raise GptkitError(f"--quantize must be one of {', '.join(QUANTIZE)}; got {quantize!r}")
    if quantize == "auto":
        int8_fits = device.type == "cpu" and dtype in ("auto", "fp32") and int8_supported()
        quantize = "int8" if int8_fits and not exact else "none"
    if dtype == "auto":
        dtype = "fp32"
        if device.type == "cuda" and not exact:
            dtype = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return DTYPES[dtype], None if quantize == "none" else quantize


def describe(dtype: torch.dtype, quantize: str | None) -> str:
    name = next(k for k, v in DTYPES.items() if v == dtype)
    return f"{name} with {quantize} weights" if quantize else name
