"""int8 inference on the CPU: every Linear of the blocks, and the output layer, with int8 weights.

Decoding one token at a time streams every weight from memory once per token, so on a CPU its speed
is the weights' size. fbgemm's dynamic int8 kernel (int8 weights with one scale per output channel;
the activations quantized per call) was the fastest matmul measured on 2 AVX2 cores: about 3x fp32
decoding at batch 1, where bf16 weights gave 1.7x (and a 6x slower prefill: AVX2 has no bf16
arithmetic) and ``_weight_int8pack_mm`` 1.6x. The token
embedding stays exact for the lookup; the tied output layer gets its own int8 copy (it is a third
of GPT-2 124M's weights, so it matters most).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn

from gptkit.errors import GptkitError
from gptkit.model.gpt import GPT


class Int8Linear(nn.Module):
    """y = x W^T + b, with W held as int8 in fbgemm's packed layout (inference only)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        weight = weight.detach().float()
        scale = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12).double()  # (out,): per output channel
        with warnings.catch_warnings():  # quantized tensors are deprecated; fbgemm's packing still takes them
            warnings.simplefilter("ignore", UserWarning)
            q = torch.quantize_per_channel(weight, scale, torch.zeros_like(scale, dtype=torch.long), 0, torch.qint8)
        self.packed = torch.ops.quantized.linear_prepack(q, None if bias is None else bias.detach().float())
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # reduce_range: 7-bit activations, so AVX2's 16-bit pairwise sums cannot saturate
        try:
            return torch.ops.quantized.linear_dynamic(x.float(), self.packed, True).to(x.dtype)
        except RuntimeError:  # fbgemm cannot scale inf or nan: say what that means, checked only on failure
            if torch.isfinite(x).all():
                raise
            raise GptkitError("the model's activations are not finite: its weights have diverged (finite but "
                              "huge); use an earlier checkpoint of the run") from None

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        raise GptkitError("an int8 model is for inference only and cannot be saved; save the model loaded without quantize")


def int8_supported() -> bool:
    return "fbgemm" in torch.backends.quantized.supported_engines


def quantize_int8(model: GPT) -> GPT:
    """Swap the model's Linear layers (and its output layer) for int8 ones, in place."""
    if model.wte.weight.device.type != "cpu" or not int8_supported():
        raise GptkitError("--quantize int8 runs on x86 CPUs (fbgemm); on a GPU use --dtype bf16")
    if model.wte.weight.dtype != torch.float32:
        raise GptkitError("--quantize int8 computes in fp32; leave --dtype at fp32")
    for block in model.h:
        for parent in (block.attn, block.mlp):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Linear):
                    setattr(parent, name, Int8Linear(child.weight, child.bias))
    model.output = Int8Linear(model.wte.weight, None)
    return model.eval()
