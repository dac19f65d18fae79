"""The int8 and int4 layers against the fp32 Linear they replace, and what quantize() swaps where."""

import pytest
import torch
import torch.nn as nn

from gptkit import GptkitError
from gptkit.model.quantize import (
    Int4Linear,
    Int8Linear,
    OneDNNLinear,
    int4_supported,
    int8_supported,
    onednn_supported,
    quantize,
    use_onednn,
)
from tests.conftest import tiny_model

INT8 = pytest.mark.skipif(not int8_supported(), reason="int8 needs fbgemm (x86)")
ONEDNN = pytest.mark.skipif(not onednn_supported(), reason="needs PyTorch built with oneDNN")
INT4 = pytest.mark.skipif(not (int4_supported() and int8_supported()), reason="int4 needs PyTorch's CPU int4 kernel")


def relative_error(got: torch.Tensor, exact: torch.Tensor, dim=None) -> torch.Tensor:
    return (got - exact).norm(dim=dim) / exact.norm(dim=dim)


@INT8
def test_int8_scales_each_token_by_its_own_activations():
    torch.manual_seed(0)
    layer = nn.Linear(64, 48)
    x = torch.randn(3, 5, 64)
    x[1, 2] *= 1000  # one token with huge activations: under one scale per call the others lost their bits
    x[2, 0] *= 1e-3
    exact, int8 = layer(x), Int8Linear(layer.weight, layer.bias)
    assert relative_error(int8(x), exact, dim=-1).max() < 0.03  # every token within 3%, the tiny one too
    one = x[1, 2:3]  # a single token takes the kernel's own per-call scale: the same accuracy
    assert relative_error(int8(one), layer(one)) < 0.03
    assert int8(x[:, :0]).shape == (3, 0, 48)


@INT8
def test_int8_without_bias_and_on_a_zero_token():
    torch.manual_seed(0)
    layer = nn.Linear(32, 16, bias=False)
    x = torch.randn(4, 32)
    x[1] = 0
    got = Int8Linear(layer.weight, None)(x)
    assert torch.isfinite(got).all() and got[1].abs().max() == 0
    assert relative_error(got, layer(x)) < 0.02


@INT4
@pytest.mark.parametrize("out_features", [48, 50])  # 50: padded to 64 for the kernel, cut from the result
def test_int4_is_close_to_the_fp32_layer(out_features):
    torch.manual_seed(0)
    layer = nn.Linear(96, out_features)
    int4 = Int4Linear(layer.weight, layer.bias)
    x = torch.randn(2, 7, 96)
    got = int4(x)
    assert got.shape == (2, 7, out_features) and got.dtype == torch.float32
    assert relative_error(got, layer(x)) < 0.1  # 4 bits, 32 weights a scale: about 8% on random weights
    with pytest.raises(GptkitError, match="cannot be saved"):
        int4.state_dict()
    with pytest.raises(ValueError, match="multiple of the group size"):
        Int4Linear(torch.randn(16, 40), None)


@INT4
def test_int4_quantizes_the_blocks_and_int8_the_output_layer():
    model = quantize(tiny_model(), "int4")
    kinds = {name: type(m) for name, m in model.named_modules() if name.endswith(("c_attn", "c_fc", "c_proj", "output"))}
    assert kinds.pop("output") is Int8Linear
    assert set(kinds.values()) == {Int4Linear}
    with torch.inference_mode():
        logits = model(torch.randint(256, (2, 9)))
    assert logits.shape == (2, 9, 256) and torch.isfinite(logits).all()


@INT4
def test_int4_leaves_a_layer_whose_width_does_not_group_to_int8():
    model = quantize(tiny_model(n_embd=48, n_head=2), "int4")  # c_attn, c_fc: 48 inputs; mlp.c_proj: 192
    assert isinstance(model.h[0].attn.c_attn, Int8Linear) and isinstance(model.h[0].mlp.c_proj, Int4Linear)


def test_quantizing_a_model_not_in_fp32_on_the_cpu_is_one_error():
    for kind in ("int8", "int4"):
        with pytest.raises(GptkitError, match="--dtype fp32"):
            quantize(tiny_model().to(torch.bfloat16), kind)
    with pytest.raises(GptkitError, match="must be one of none, int8, int4"):
        quantize(tiny_model(), "int2")


@ONEDNN
def test_onednn_runs_the_same_fp32_model_on_reordered_weights(tmp_path):
    exact, model = tiny_model(), use_onednn(tiny_model())
    assert isinstance(model.h[0].mlp.c_fc, OneDNNLinear) and isinstance(model.output, OneDNNLinear)
    assert not any(isinstance(m, nn.Linear) for m in model.modules())  # the plain weights are gone, not copied
    idx = torch.randint(256, (3, 11))
    with torch.inference_mode():
        assert torch.allclose(model(idx), exact(idx), atol=1e-5, rtol=1e-5)
    with pytest.raises(GptkitError, match="cannot be saved"):
        model.save_pretrained(tmp_path / "saved")  # inference only, as a quantized model is
    assert not (tmp_path / "saved").exists()  # refused before anything is written
    bf16 = tiny_model().to(torch.bfloat16)
    assert type(use_onednn(bf16).h[0].mlp.c_fc) is nn.Linear and bf16.output is None  # fp32 on the CPU only
    int8 = use_onednn(quantize(tiny_model(), "int8")) if int8_supported() else None
    assert int8 is None or isinstance(int8.output, Int8Linear)  # a quantized model keeps its layers
    with pytest.raises(GptkitError, match="already prepared for inference"):
        quantize(model, "int8")  # not a silent no-op: its Linears are gone


@ONEDNN
@pytest.mark.parametrize("threads", [1, 2])
def test_onednn_gives_a_row_the_same_bits_alone_and_in_any_batch(threads):
    """What lets fp32 decoding give a sequence the same tokens whatever is decoded beside it."""
    torch.manual_seed(0)
    layer, x = nn.Linear(768, 2304), torch.randn(70, 768)
    onednn, before = OneDNNLinear(layer.weight, layer.bias), torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        alone = onednn(x[:1])
        for rows in (2, 16, 17, 70):
            assert torch.equal(onednn(x[:rows])[:1], alone)
    finally:
        torch.set_num_threads(before)
