"""Quantized inference on the CPU: int8 or int4 weights for every Linear of the blocks and the output layer.

Decoding one token at a time streams every weight from memory once per token, so on a CPU its speed
is the weights' size. The token embedding stays exact for the lookup; the tied output layer gets its
own quantized copy (a third of GPT-2 124M's weights, so it matters most).

``int8`` (``Int8Linear``): fbgemm's dynamic int8 kernel, int8 weights with one scale per output
channel. The kernel quantizes its input to 7 bits with one scale and zero point per call, so before
the call each token (row) is scaled by its own largest magnitude and its output scaled back: a
token's resolution is its own, not the batch's largest activation's (a single row, the batch-1
decode step, needs no scaling). Measured on 2 AVX2 cores (benchmarks/decode_throughput.py) it was the
fastest CPU matmul at every batch size: bf16 weights are 1.7x fp32 with a 6x slower prefill (AVX2 has
no bf16 arithmetic), ``_weight_int8pack_mm`` (weight-only, bf16 inputs) matched fbgemm only for the
smallest layers at batch 1 and fp32's speed at batch 16.

``int4`` (``Int4Linear``): PyTorch's CPU int4 kernel (``_weight_int4pack_mm_for_cpu``): 4-bit weights,
each group of 32 input features with its own scale and offset, bf16 inputs (its vectorized path; fp32
inputs take a scalar one). Half int8's bytes, but on AVX2 the kernel is bound by unpacking, not by
memory, so it is slower than int8 there (docs/benchmarks.md); it is for memory, or CPUs with AVX-512.
The output layer keeps int8 weights: it is where int4's error would reach the logits directly.

fp32 (``use_onednn``): not a quantization but the same fp32 weights on another kernel, reordered once.
oneDNN's fp32 matmul (``torch.ops.mkldnn._linear_pointwise``, what inductor calls on the CPU) decoded
GPT-2's shapes 1.3x faster than F.linear (MKL) at batch 1 and 1.7x at batch 16 on 2 AVX2 cores with
the weights as they are; on weights reordered once into its blocked layout, 1.26x faster again at
batch 16 and 1.1x at 64 (generate, one-process A/B), and a row's result no longer depends on the rows
beside it (bitwise), which the plain layout's does. The blocks' weights are replaced, so they take no more memory; the tied output
layer gets its own copy, since the embedding lookup needs the plain one.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn

from gptkit.errors import GptkitError
from gptkit.model.gpt import GPT

KINDS = ("int8", "int4")
INT4_GROUP = 32  # input features per scale and offset; the kernel takes 32, 64, 128 or 256
_DYNAMIC = torch.ops.quantized.linear_dynamic.default
_ONEDNN = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
ONEDNN_BATCH = 16  # the rows oneDNN lays the weights out for: 16 or 64 decoded alike, 1 no faster than plain at 16


class Int8Linear(nn.Module):
    """y = x W^T + b, with W held as int8 in fbgemm's packed layout and each token's activations
    quantized with their own scale (inference only)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        weight = weight.detach().float()
        scale = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12).double()  # (out,): per output channel
        with warnings.catch_warnings():  # quantized tensors are deprecated; fbgemm's packing still takes them
            warnings.simplefilter("ignore", UserWarning)
            q = torch.quantize_per_channel(weight, scale, torch.zeros_like(scale, dtype=torch.long), 0, torch.qint8)
        self.bias = None if bias is None else bias.detach().float()
        self.packed = torch.ops.quantized.linear_prepack(q, self.bias)  # the bias is added in the kernel
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32:
            return self.forward(x.float()).to(x.dtype)
        try:
            if x.numel() == x.shape[-1]:  # one token: the call's scale is already its own
                return _DYNAMIC(x, self.packed, True)
            # Each row scaled to largest magnitude 1: the kernel's one scale then fits every token alike.
            # reduce_range: 7-bit activations, so AVX2's 16-bit pairwise sums cannot saturate.
            s = torch.amax(torch.abs(x), -1, True).clamp_(min=1e-30)  # 8x faster than vector_norm(x, inf)
            y = _DYNAMIC(x / s, self.packed, True)
        except RuntimeError:  # fbgemm cannot scale inf or nan: say what that means, checked only on failure
            if torch.isfinite(x).all():
                raise
            raise GptkitError("the model's activations are not finite: its weights have diverged (finite but "
                              "huge); use an earlier checkpoint of the run") from None
        if self.bias is None:
            return y.mul_(s)
        return torch.addcmul(self.bias, y.sub_(self.bias), s)  # (W x/s + b - b) s + b

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        raise GptkitError("a model prepared for CPU inference (quantized, or fp32 in oneDNN's layout) cannot be saved; "
                          "save the model as loaded, before quantize or use_onednn")


class Int4Linear(nn.Module):
    """y = x W^T + b, with W in 4 bits: each group of ``group`` input features of an output channel
    has its own scale and offset (asymmetric, the group's min to max in 16 steps). Inference only.

    PyTorch's kernel takes bf16 inputs and gives bf16 outputs; the bias is added in fp32. Output
    channels are padded to a multiple of 16 for the kernel, and the padding cut from the result."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, group: int = INT4_GROUP):
        super().__init__()
        weight = weight.detach().float()
        n, k = weight.shape
        if k % group:
            raise ValueError(f"int4 needs in_features ({k}) to be a multiple of the group size ({group})")
        padded = torch.cat([weight, weight.new_zeros(-n % 16, k)]) if n % 16 else weight
        groups = padded.view(len(padded), k // group, group)
        low, high = groups.amin(-1), groups.amax(-1)
        scale = ((high - low) / 15).clamp(min=1e-12)
        q = ((groups - low[..., None]) / scale[..., None]).round_().clamp_(0, 15)
        self.packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.view(len(padded), k).int(), 1)
        # the kernel computes (q - 8) * scale + zero: zero is the value of q = 8
        self.scales_zeros = torch.stack([scale, low + 8 * scale], -1).transpose(0, 1).contiguous().bfloat16()
        self.bias = None if bias is None else bias.detach().float()
        self.group, self.in_features, self.out_features = group, k, n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features).to(torch.bfloat16)
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(rows, self.packed, self.group, self.scales_zeros)
        if y.shape[1] != self.out_features:
            y = y[:, : self.out_features]
        y = y.float() if self.bias is None else torch.add(self.bias, y)  # fp32 either way
        return y.view(*x.shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int4, group={self.group}"

    _save_to_state_dict = Int8Linear._save_to_state_dict


class OneDNNLinear(nn.Module):
    """y = x W^T + b on oneDNN's fp32 matmul, W held reordered in its blocked layout (inference only)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), ONEDNN_BATCH)
        self.bias = None if bias is None else bias.detach()
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ONEDNN(x, self.packed, self.bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, fp32 (oneDNN layout)"

    _save_to_state_dict = Int8Linear._save_to_state_dict


def onednn_supported() -> bool:
    return _ONEDNN is not None and torch.backends.mkldnn.is_available()


def use_onednn(model: GPT) -> GPT:
    """Run an fp32 CPU model's Linear layers and output layer on oneDNN's matmul, weights reordered
    (in place; inference only, like ``quantize``). Anything else (a GPU, bf16, no oneDNN) is left as it is."""
    if model.wte.weight.device.type != "cpu" or model.wte.weight.dtype != torch.float32 or not onednn_supported():
        return model
    return _swap_linears(model, lambda weight, bias, output: OneDNNLinear(weight, bias)).requires_grad_(False)


def int8_supported() -> bool:
    return "fbgemm" in torch.backends.quantized.supported_engines


def int4_supported() -> bool:
    return hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu")


def check(kind: str, device: torch.device, dtype: torch.dtype | str) -> None:
    """One line saying why ``kind`` cannot run here, and what to use instead; nothing if it can."""
    if kind not in KINDS:
        raise GptkitError(f"--quantize must be one of none, {', '.join(KINDS)}; got {kind!r}")
    kernel = "fbgemm, x86" if kind == "int8" else "PyTorch's CPU int4 kernel"
    if device.type != "cpu":
        raise GptkitError(f"--quantize {kind} runs on the CPU ({kernel}); on a GPU use --quantize none "
                          "(bf16 is what --dtype auto picks there)")
    if dtype not in (torch.float32, "fp32", "auto"):
        raise GptkitError(f"--quantize {kind} keeps the rest of the model in fp32; use --dtype fp32 (or auto) with it")
    if not (int8_supported() if kind == "int8" else int4_supported()):
        raise GptkitError(f"--quantize {kind} needs {kernel}, which this PyTorch build lacks; use --quantize none")


def quantize(model: GPT, kind: str = "int8") -> GPT:
    """Swap the model's Linear layers (and its output layer) for ``kind`` ones ("int8" or "int4"), in place.

    int4 takes the blocks' Linear layers whose input width is a multiple of 32 (every one of
    GPT-2's); the output layer, and any other, get int8 weights where fbgemm runs."""
    check(kind, model.wte.weight.device, model.wte.weight.dtype)
    if model.output is not None:
        raise GptkitError("this model is already prepared for inference (quantized, or fp32 in oneDNN's layout); "
                          "quantize the model as loaded")
    return _swap_linears(model, lambda weight, bias, output: _layer(kind, weight, bias, output))


def _swap_linears(model: GPT, make) -> GPT:
    """Replace the blocks' nn.Linear layers by ``make(weight, bias, output=False)``, and give a model
    whose output layer is still the tied W_e its own, ``make(W_e, None, output=True)`` (in place, for
    inference)."""
    for block in model.h:
        for parent in (block.attn, block.mlp):
            for name, child in list(parent.named_children()):
                if type(child) is nn.Linear:
                    setattr(parent, name, make(child.weight, child.bias, False))
    if model.output is None:
        model.output = make(model.wte.weight, None, True)
    return model.eval()


def _layer(kind: str, weight: torch.Tensor, bias: torch.Tensor | None, output: bool) -> nn.Module:
    fits_int4 = weight.shape[1] % INT4_GROUP == 0
    if kind == "int4" and fits_int4 and not (output and int8_supported()):
        return Int4Linear(weight, bias)
    if int8_supported():
        return Int8Linear(weight, bias)
    raise GptkitError(f"--quantize int4 needs layer widths that are multiples of {INT4_GROUP} on CPUs without fbgemm "
                      f"(this model has {weight.shape[1]}); use --quantize none")


def quantize_int8(model: GPT) -> GPT:
    """``quantize(model, "int8")``."""
    return quantize(model, "int8")
