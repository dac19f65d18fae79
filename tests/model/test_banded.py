"""Banded attention that computes only the band equals dense attention under the band mask (fp32, 1e-5),
outputs and gradients, on every path: dispatch, blocked and dense; FlexAttention's outputs (eager
here, where it has no backward; CUDA compiles the same mask_mod)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from gptkit.model import banded
from gptkit.model.attention import build_attention_mask
from gptkit.model.banded import band_mask, banded_attention, blocked_banded, dense_banded, flex_banded

TOL = dict(atol=1e-5, rtol=1e-5)


def reference_mask(Tq: int, Tk: int, window: int, key_valid: torch.Tensor | None) -> torch.Tensor:
    """The band written out from its definition, one query and key at a time."""
    B = 1 if key_valid is None else key_valid.shape[0]
    mask = torch.zeros(B, 1, Tq, Tk, dtype=torch.bool)
    for b in range(B):
        for t in range(Tq):
            i = Tk - Tq + t
            for j in range(Tk):
                real = key_valid is None or bool(key_valid[b, j])
                mask[b, 0, t, j] = (i - window < j <= i and real) or j == i
    return mask


def inputs(B: int, Tq: int, Tk: int, nh: int = 2, hd: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, nh, Tq, hd, generator=g, requires_grad=True)
    k, v = (torch.randn(B, nh, Tk, hd, generator=g, requires_grad=True) for _ in range(2))
    return q, k, v, torch.randn(B, nh, Tq, hd, generator=g)


def padding(B: int, T: int, side: str) -> torch.Tensor | None:
    if side == "none":
        return None
    valid = torch.ones(B, T, dtype=torch.bool)
    for b in range(B):
        n = 3 + 5 * b  # a different amount of padding per row
        if side == "left":
            valid[b, :n] = False
        else:
            valid[b, T - n:] = False
    return valid


def output_and_grads(fn, q, k, v, grad, *args, **kwargs):
    y = fn(q, k, v, *args, **kwargs)
    dq, dk, dv = torch.autograd.grad(y, (q, k, v), grad)
    return y, dq, dk, dv


def assert_matches_dense(fn, q, k, v, grad, window, key_valid, **kwargs):
    mask = band_mask(q.shape[2], k.shape[2], window, key_valid)
    expected = output_and_grads(F.scaled_dot_product_attention, q, k, v, grad, attn_mask=mask)
    for got, want in zip(output_and_grads(fn, q, k, v, grad, window, key_valid, **kwargs), expected):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("side", ["none", "left", "right"])
def test_band_mask_is_the_definition(side):
    for Tq, Tk, window in [(11, 11, 4), (1, 11, 4), (5, 11, 3), (11, 11, 1), (6, 9, 20)]:
        valid = padding(2, Tk, side)
        assert torch.equal(band_mask(Tq, Tk, window, valid), reference_mask(Tq, Tk, window, valid))


@pytest.mark.parametrize("side", ["none", "left", "right"])
@pytest.mark.parametrize("window", [8, 32, 7, 20])  # 8 and 32 divide T = 96, 7 and 20 do not
def test_banded_equals_masked_dense_attention(window, side):
    q, k, v, grad = inputs(2, 96, 96)
    valid = padding(2, 96, side)
    assert_matches_dense(banded_attention, q, k, v, grad, window, valid)
    assert_matches_dense(blocked_banded, q, k, v, grad, window, valid)
    assert_matches_dense(blocked_banded, q, k, v, grad, window, valid, block=8)  # blocks smaller than the window


@pytest.mark.parametrize("side", ["none", "left", "right"])
@pytest.mark.parametrize("Tq", [1, 5, 40])
def test_queries_after_cached_keys(Tq, side):
    """Decoding and chunked prefill: the queries are the last Tq of 70 keys."""
    q, k, v, grad = inputs(2, Tq, 70)
    valid = padding(2, 70, side)
    for window in (6, 16, 25):
        assert_matches_dense(banded_attention, q, k, v, grad, window, valid)
        assert_matches_dense(blocked_banded, q, k, v, grad, window, valid)
        assert_matches_dense(dense_banded, q, k, v, grad, window, valid)


def test_the_keys_of_a_decode_step_can_be_only_those_inside_the_window():
    """A cache that keeps only the last ``window`` keys gives the step the same answer as the whole cache."""
    q, k, v, _ = inputs(2, 1, 50)
    window = 16
    whole = banded_attention(q, k, v, window)
    torch.testing.assert_close(banded_attention(q, k[:, :, -window:], v[:, :, -window:], window), whole, **TOL)


@pytest.mark.parametrize("side", ["none", "left", "right"])
def test_flex_attention_path_has_the_same_meaning(side):
    """FlexAttention runs eager on the CPU (unfused, forward only): the mask_mod that CUDA compiles is
    checked here on outputs; its gradients are FlexAttention's own."""
    valid = padding(2, 70, side)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "flex_attention called without torch.compile()"
        for Tq, window in [(70, 8), (70, 13), (30, 6), (1, 16)]:
            q, k, v, _ = (t.detach() for t in inputs(2, Tq, 70))
            expected = F.scaled_dot_product_attention(q, k, v, attn_mask=band_mask(Tq, 70, window, valid))
            torch.testing.assert_close(flex_banded(q, k, v, window, valid), expected, **TOL)


@pytest.mark.parametrize("side", ["left", "right"])
def test_real_tokens_see_what_the_models_band_mask_lets_them_see(side):
    """Against attention.build_attention_mask (the model's banded mask today), on the real query rows.

    Padding rows differ: the model's mask counts positions over real tokens only, so a right-padding
    query may see more; their outputs are discarded anyway.
    """
    T, window = 96, 20
    q, k, v, grad = inputs(2, T, T)
    valid = padding(2, T, side)
    rows = valid[:, None, :, None].float()  # the loss counts only real queries
    grad = grad * rows
    mask = build_attention_mask(T, valid, window)
    expected = output_and_grads(F.scaled_dot_product_attention, q, k, v, grad, attn_mask=mask)
    got = output_and_grads(banded_attention, q, k, v, grad, window, valid)
    torch.testing.assert_close(got[0] * rows, expected[0] * rows, **TOL)
    for g, e in zip(got[1:], expected[1:]):
        torch.testing.assert_close(g, e, **TOL)


def test_no_nan_when_a_whole_band_is_padding():
    q, k, v, grad = inputs(1, 64, 64)
    valid = torch.zeros(1, 64, dtype=torch.bool)
    valid[0, 40:] = True  # queries 0..39 have no real key at all
    y, dq, dk, dv = output_and_grads(banded_attention, q, k, v, grad, 8, valid)
    assert all(torch.isfinite(t).all() for t in (y, dq, dk, dv))
    torch.testing.assert_close(y[0, :, :40], v[0, :, :40], **TOL)  # each padding query sees only itself


def test_small_spans_take_dense_attention_and_long_ones_the_blocks(monkeypatch):
    calls = []
    monkeypatch.setattr(banded, "dense_banded", lambda *a: calls.append("dense") or dense_banded(*a))
    monkeypatch.setattr(banded, "blocked_banded", lambda *a: calls.append("blocked") or blocked_banded(*a))
    q, k, v, _ = inputs(1, 64, 64)
    banded_attention(q, k, v, 32)
    banded_attention(q, k, v, 8)
    banded_attention(q[:, :, -1:], k, v, 8)  # a decode step reads only the keys in its window
    assert calls == ["dense", "blocked", "dense"]


def test_a_plan_kept_from_inference_serves_training_and_other_batch_sizes():
    q, k, v, grad = inputs(2, 64, 64, seed=3)
    with torch.inference_mode():
        banded_attention(q[:1].detach(), k[:1].detach(), v[:1].detach(), 8)
    assert_matches_dense(banded_attention, q, k, v, grad, 8, None)


@pytest.mark.parametrize("side", ["none", "left"])
def test_heads_split_from_one_projection_as_the_model_does(side):
    """q, k, v as CausalSelfAttention makes them: strided views of one (B, T, 3C) projection."""
    B, T, nh, hd = 2, 80, 2, 8
    qkv = torch.randn(B, T, 3 * nh * hd, requires_grad=True)
    q, k, v = (t.view(B, T, nh, hd).transpose(1, 2) for t in qkv.split(nh * hd, dim=2))
    assert_matches_dense(banded_attention, q, k, v, torch.randn(B, nh, T, hd), 12, padding(B, T, side))


def test_dropout_drops_attention_weights_like_sdpa():
    """Same expectation as no dropout (SDPA rescales by 1/(1-p)): averaged over 4,000 copies of one input."""
    torch.manual_seed(0)
    q, k, v, _ = inputs(1, 48, 48)
    n = 4000
    q, k, v = (t.detach().expand(n, -1, -1, -1) for t in (q, k, v))
    y = banded_attention(q, k, v, 8, dropout_p=0.3)
    assert torch.isfinite(y).all()
    assert not torch.allclose(y[0], y[1])
    torch.testing.assert_close(y.mean(0), banded_attention(q[:1], k[:1], v[:1], 8)[0], atol=0.1, rtol=0)


def test_rejects_more_queries_than_keys():
    q, k, v, _ = inputs(1, 8, 4)
    with pytest.raises(ValueError, match="Tk >= Tq"):
        banded_attention(q, k, v, 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="compiled FlexAttention needs a GPU (benchmarks/gpu_session.sh runs this)")
@pytest.mark.parametrize("side", ["none", "left"])
def test_compiled_flex_attention_on_cuda_equals_masked_dense_with_gradients(side):
    """What CUDA runs for a long banded span: the compiled FlexAttention kernel, forward and backward."""
    q, k, v, grad = (t.detach().cuda().requires_grad_(t.requires_grad) for t in inputs(2, 512, 512, nh=4, hd=64))
    valid = padding(2, 512, side)
    valid = valid.cuda() if valid is not None else None
    window = 100  # 512 keys > 2 x 100: the flex path, not the dense one
    mask = band_mask(512, 512, window, valid, q.device)
    expected = output_and_grads(F.scaled_dot_product_attention, q, k, v, grad, attn_mask=mask)
    got = output_and_grads(banded_attention, q, k, v, grad, window, valid)
    for g, w in zip(got, expected):
        torch.testing.assert_close(g, w, atol=2e-4, rtol=2e-4)
