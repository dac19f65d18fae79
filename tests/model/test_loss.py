"""The fused output layer + cross-entropy is the plain one: the same loss and the same gradients."""

import pytest
import torch

from gptkit.model.loss import IGNORE_INDEX, linear_cross_entropy, lm_loss
from tests.conftest import tiny_model

V, C = 97, 32


def inputs(rows: int = 150, seed: int = 0, vocab: int = V):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(3, rows // 3, C, generator=g, requires_grad=True)
    weight = (torch.randn(vocab, C, generator=g) * 0.1).requires_grad_()  # logits of order 1, as in training
    targets = torch.randint(0, vocab, (3, rows // 3), generator=g)
    targets[0, :7] = IGNORE_INDEX  # padding, prompts: skipped by both
    return hidden, weight, targets


def loss_and_grads(loss_fn, hidden, weight, targets, scale: float = 1.0):
    hidden.grad = weight.grad = None
    loss = loss_fn(hidden, weight, targets)
    (loss * scale).backward()  # a scale, as grad accumulation and the fp16 scaler apply
    return loss.detach(), hidden.grad.clone(), weight.grad.clone()


def plain(hidden, weight, targets):
    return lm_loss(hidden @ weight.T, targets)


@pytest.mark.parametrize("vocab", [V, 6401])  # as it is, or padded inside to 6,464 with -inf logits
@pytest.mark.parametrize("chunk_rows", [1, 16, 49, 150, 4096])  # rows split unevenly, or not at all
def test_fused_loss_and_gradients_equal_the_plain_ones(chunk_rows, vocab):
    hidden, weight, targets = inputs(vocab=vocab)
    fused = loss_and_grads(lambda h, w, t: linear_cross_entropy(h, w, t, chunk_rows), hidden, weight, targets, 0.25)
    for got, want in zip(fused, loss_and_grads(plain, hidden, weight, targets, 0.25)):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


def test_without_gradients_it_only_computes_the_loss():
    hidden, weight, targets = inputs()
    with torch.no_grad():
        loss = linear_cross_entropy(hidden, weight, targets, 16)
    assert loss.grad_fn is None
    torch.testing.assert_close(loss, plain(hidden, weight, targets).detach())


def test_under_bf16_autocast_it_matches_the_plain_loss_under_autocast():
    hidden, weight, targets = inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = loss_and_grads(lambda h, w, t: linear_cross_entropy(h, w, t, 16), hidden, weight, targets)
        want = loss_and_grads(plain, hidden, weight, targets)
    assert fused[0].dtype == torch.float32 and fused[1].dtype == hidden.dtype and fused[2].dtype == weight.dtype
    for got, expected in zip(fused, want):
        torch.testing.assert_close(got, expected, atol=2e-2, rtol=2e-2)  # bf16 matmuls, summed in another order


def test_the_model_computes_its_loss_from_targets_as_the_logits_give_it():
    model = tiny_model(vocab_size=V)
    x, y = torch.randint(0, V, (2, 24)), torch.randint(0, V, (2, 24))
    y[1, :5] = IGNORE_INDEX
    loss = model(x, targets=y)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    want = lm_loss(model(x), y)
    want.backward()
    torch.testing.assert_close(loss, want)
    for name, p in model.named_parameters():  # the tied embedding gets both of its gradients
        torch.testing.assert_close(grads[name], p.grad, atol=1e-6, rtol=1e-5, msg=name)


def test_weights_give_the_weighted_sum_of_the_cross_entropies():
    hidden, weight, targets = inputs(vocab=6401)
    weights = torch.rand(targets.shape, generator=torch.Generator().manual_seed(1)) * (targets != IGNORE_INDEX)

    def weighted(h, w, t):
        return (lm_loss(h @ w.T, t, reduction="none") * weights).sum()

    fused = loss_and_grads(lambda h, w, t: linear_cross_entropy(h, w, t, 16, weights=weights), hidden, weight, targets)
    for got, want in zip(fused, loss_and_grads(weighted, hidden, weight, targets)):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
