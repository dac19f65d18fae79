"""Loss helpers beside the model, so every trainer and scorer computes L1 the same way.

Training computes L1 from the final hidden states with ``linear_cross_entropy``: the output layer and
the cross-entropy are done a chunk of rows at a time, and the gradients are made in the same pass,
so the (B, T, vocab) logits (3.3 GB in fp32 for GPT-2 at 16 x 1024) never exist at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100
CHUNK_ROWS = 4096  # rows of logits made at once: 4096 x 50,257 fp32 is 0.8 GB
PAD_VOCAB = 64  # the output layer's matmuls run on the vocabulary rounded up to this


def lm_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy L1 (nats). logits (B, T, V), targets (B, T); IGNORE_INDEX is skipped."""
    loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX,
                           reduction=reduction)
    return loss if reduction != "none" else loss.view(targets.shape)


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         chunk_rows: int = CHUNK_ROWS, *, weights: torch.Tensor | None = None) -> torch.Tensor:
    """``lm_loss(hidden @ weight.T, targets)``, the mean over non-ignored targets, without the logits;
    with ``weights`` (shaped like targets, 0 where ignored) the weighted sum of the cross-entropies
    instead (fine-tuning averages per sequence). hidden (..., C), weight (V, C), targets (...). Under
    autocast the matmuls run in its dtype and the softmax in fp32, as the unfused loss does."""
    device = hidden.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype
    hidden, targets = hidden.flatten(0, -2), targets.flatten()
    weights = None if weights is None else weights.flatten().float()
    if torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad):
        return _LinearCrossEntropy.apply(hidden, weight, targets, weights, chunk_rows, dtype)
    return _chunked(hidden, weight, targets, weights, chunk_rows, dtype, grads=False)[0]


def _chunked(hidden, weight, targets, weights, chunk_rows, dtype, grads: bool):
    """(loss, and with ``grads`` its gradients for hidden and weight), a chunk of rows at a time:
    each chunk's logits give its loss and, turned in place into softmax - one-hot, its gradients.
    A large vocabulary is padded to a multiple of PAD_VOCAB with zero rows whose logits are -inf, so
    the matmuls run on aligned shapes (50,257 -> 50,304, as nanoGPT's model is built); a small one,
    where padding would add more than 1% to them (65 characters -> 128), is not. Nothing outside this
    function sees the padding."""
    vocab = weight.shape[0]
    w = weight.to(dtype)
    pad = -vocab % PAD_VOCAB
    padded = 0 < pad < vocab / 100
    if padded:
        w = F.pad(w, (0, 0, 0, pad))  # (V_pad, C)
    if weights is None:  # the mean: each kept target weighs 1, and the sums are divided by their count
        weights = (targets != IGNORE_INDEX).float()
        count = weights.sum().clamp_min(1)
    else:
        count = torch.ones((), device=hidden.device)
    loss = torch.zeros((), device=hidden.device, dtype=torch.float32)
    grad_hidden = torch.empty_like(hidden) if grads else None
    grad_weight = torch.zeros(w.shape, device=weight.device, dtype=torch.float32) if grads else None
    for start in range(0, hidden.shape[0], chunk_rows):
        h, t = hidden[start: start + chunk_rows].to(dtype), targets[start: start + chunk_rows]
        logits = (h @ w.T).float()  # (chunk, V_pad)
        if padded:
            logits[:, vocab:] = float("-inf")
        row = weights[start: start + chunk_rows].unsqueeze(1)  # (chunk, 1)
        t = t.clamp_min(0).unsqueeze(1)  # an ignored target weighs 0: any id will do
        lse = logits.logsumexp(-1, keepdim=True)
        loss += ((lse - logits.gather(1, t)) * row).sum()
        if grads:
            grad = logits.sub_(lse).exp_().scatter_add_(1, t, -torch.ones_like(row)).mul_(row).to(dtype)  # d(loss)/d(logits)
            grad_hidden[start: start + chunk_rows] = grad @ w
            grad_weight += (grad.T @ h).float()
    if not grads:
        return loss / count, None, None
    return loss / count, grad_hidden / count, (grad_weight[:vocab] / count).to(weight.dtype)


class _LinearCrossEntropy(torch.autograd.Function):
    """The gradients are made in the forward, while each chunk's logits exist; backward scales them."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, weights, chunk_rows, dtype):
        loss, grad_hidden, grad_weight = _chunked(hidden, weight, targets, weights, chunk_rows, dtype, grads=True)
        ctx.save_for_backward(grad_hidden, grad_weight)
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad_loss, grad_weight * grad_loss, None, None, None, None
