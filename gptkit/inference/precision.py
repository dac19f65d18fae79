"""The precision a model runs in for inference (--dtype, --quantize), and what ``auto`` picks."""

from __future__ import annotations

import torch

from gptkit.errors import GptkitError
from gptkit.model.quantize import KINDS, check, int8_supported

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
QUANTIZE = ("auto", "none", *KINDS)


def pick_precision(device: torch.device, dtype: str = "auto", quantize: str = "auto",
                   exact: bool = False) -> tuple[torch.dtype, str | None]:
    """(dtype, quantize) for ``device``; ``auto`` is the fastest option at fp32-level quality there.

    On CUDA that is bf16 (fp16 on GPUs without it). On the CPU it is fp32 with int8 weights, each
    token's activations quantized with their own scale (the fastest decoding measured on 2 AVX2
    cores at batch 1 and 16, for +0.5% perplexity; int4 is slower there and costs more, bf16
    weights decode at about half int8's speed with a 6x slower prefill: no bf16 arithmetic).
    ``exact`` is for numbers reported as results (eval): plain fp32 everywhere.
    A quantization that cannot run as asked (on a GPU, beside bf16) is one GptkitError naming the fix.
    """
    if dtype not in ("auto", *DTYPES):
        raise GptkitError(f"--dtype must be one of auto, {', '.join(DTYPES)}; got {dtype!r}")
    if quantize not in QUANTIZE:
        raise GptkitError(f"--quantize must be one of {', '.join(QUANTIZE)}; got {quantize!r}")
    if quantize == "auto":
        int8_fits = device.type == "cpu" and dtype in ("auto", "fp32") and int8_supported()
        quantize = "int8" if int8_fits and not exact else "none"
    elif quantize != "none":
        check(quantize, device, dtype)
    if dtype == "auto":
        dtype = "fp32"
        if device.type == "cuda" and not exact:
            dtype = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return DTYPES[dtype], None if quantize == "none" else quantize


def describe(dtype: torch.dtype, quantize: str | None) -> str:
    name = next(k for k, v in DTYPES.items() if v == dtype)
    return f"{name} with {quantize} weights" if quantize else name
