"""GPT-3's locally banded attention, computing only the band.

A banded layer lets each token see the last ``window`` positions. As a mask over dense attention it
costs T x T scores; here the queries go in blocks of ``block`` and each block is scored against only
the keys its band can reach (about ``block + window``), so the cost grows with T x window.

Three paths with one meaning (tests/model/test_banded.py holds each to the masked dense attention):

- small key spans (decoding, short sequences): dense SDPA under the band mask, cheapest there;
- CUDA without dropout: FlexAttention with a block mask (compiled; ``flex_banded``);
- elsewhere (CPU eager, older GPUs, dropout): the blocked PyTorch path (``blocked_banded``).
"""

from __future__ import annotations

import functools
import importlib.util

import torch
import torch.nn.functional as F

_HAS_TRITON = importlib.util.find_spec("triton") is not None  # FlexAttention's CUDA kernels: Triton, sm 8.0 (Ampere) on


def banded_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int,
                     key_valid: torch.Tensor | None = None, dropout_p: float = 0.0) -> torch.Tensor:
    """Causal attention over the last ``window`` keys, computing only that band.

    q: (B, nh, Tq, hd); k, v: (B, nh, Tk, hd) with Tk >= Tq. The queries are the last Tq of the Tk key
    positions (in decoding, the keys before them are the cached ones). Query t, at key index
    i = Tk - Tq + t, attends key j iff ``i - window < j <= i`` and ``key_valid[b, j]`` (``key_valid``
    (B, Tk) bool, None: every key is real). Every query attends at least its own key, so padding
    queries get a finite output (which the caller ignores). ``dropout_p`` drops attention weights as
    ``F.scaled_dot_product_attention`` does. Returns (B, nh, Tq, hd).
    """
    Tq, Tk = q.shape[2], k.shape[2]
    if window < 1 or Tk < Tq:
        raise ValueError(f"banded_attention needs window >= 1 and Tk >= Tq, got window {window}, Tq {Tq}, Tk {Tk}")
    start = max(0, Tk - Tq - window + 1)  # keys before this one are out of every query's band
    if Tk - start <= 2 * window:  # the band is most of the scores: dense is cheaper
        return dense_banded(q, k, v, window, key_valid, dropout_p)
    if q.is_cuda and dropout_p == 0.0 and _HAS_TRITON and torch.cuda.get_device_capability(q.device) >= (8, 0):
        return flex_banded(q, k, v, window, key_valid)
    return blocked_banded(q, k, v, window, key_valid, dropout_p)


def band_mask(Tq: int, Tk: int, window: int, key_valid: torch.Tensor | None = None,
              device: torch.device | None = None) -> torch.Tensor:
    """The dense (B|1, 1, Tq, Tk) bool mask of ``banded_attention``'s meaning."""
    i = torch.arange(Tk - Tq, Tk, device=device)[:, None]
    j = torch.arange(Tk, device=device)[None]
    allowed = ((j <= i) & (j > i - window))[None]  # (1, Tq, Tk)
    if key_valid is not None:
        allowed = allowed & key_valid[:, None, :]
    return (allowed | (j == i))[:, None]


def dense_banded(q, k, v, window, key_valid=None, dropout_p=0.0):
    """Dense SDPA under the band mask, over only the keys some query can reach."""
    Tq, Tk = q.shape[2], k.shape[2]
    start = max(0, Tk - Tq - window + 1)
    if key_valid is not None:
        key_valid = key_valid[:, start:]
    mask = band_mask(Tq, Tk - start, window, key_valid, q.device)
    return F.scaled_dot_product_attention(q, k[:, :, start:], v[:, :, start:], attn_mask=mask, dropout_p=dropout_p)


def blocked_banded(q, k, v, window, key_valid=None, dropout_p=0.0, block: int | None = None):
    """Block-local attention: each block of ``block`` queries against the ``(m + 1) * block`` keys
    (m = ceil((window - 1) / block)) that end with its own, under the band mask, in one SDPA call.

    The blocks are laid out (B * nh, n_blocks, block, hd), so one (1, n_blocks, block, keys) mask serves
    every row and head; with padding, whose mask differs per row, (nh, B * n_blocks, block, hd) under a
    (1, B * n_blocks, block, keys) mask. Key columns before the first key or after the last are clamped
    copies, masked out; each query's own key is always allowed, so no row is empty (padding queries
    included) and no masked or discarded entry sends gradient anywhere.
    """
    B, nh, Tq, hd = q.shape
    block = block or min(window, 128)
    S = (-(-(window - 1) // block) + 1) * block  # keys per query block
    nb = -(-Tq // block)
    cols, mask = _block_plan(Tq, k.shape[2], window, block, key_valid, q.device, q.dtype)
    padded = key_valid is not None
    rows = (lambda t: t.transpose(0, 1)) if padded else (lambda t: t)  # padded: heads first
    lead = (nh, B * nb) if padded else (B * nh, nb)
    if nb * block != Tq:
        q = F.pad(q, (0, 0, 0, nb * block - Tq))
    qb = rows(q).reshape(*lead, block, hd)
    kb = rows(k).index_select(2, cols).view(*lead, S, hd)
    vb = rows(v).index_select(2, cols).view(*lead, S, hd)
    y = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=mask, dropout_p=dropout_p)
    return rows(y.view(*rows(q).shape))[:, :, :Tq]


def _block_plan(Tq, Tk, window, block, key_valid, device, dtype):
    """The key index each block's key column holds, flat (n_blocks * S,), and the blocks' mask,
    (1, n_blocks, block, S), or (1, B * n_blocks, block, S) under ``key_valid``.

    Without ``key_valid`` the plan depends only on the shapes: it is kept (as an additive float mask, which
    SDPA takes without converting) and reused by the next call of the same shapes, i.e. by every banded
    layer of a forward pass and by every step of training.
    """
    key = (Tq, Tk, window, block, device, dtype)
    cacheable = key_valid is None and not torch.compiler.is_compiling()
    if cacheable and key in _plans:
        return _plans[key]
    m = -(-(window - 1) // block)
    S, nb = (m + 1) * block, -(-Tq // block)
    with torch.inference_mode(False):  # a kept plan must serve training too
        # key index of column c in block n's keys; query r of block n sits at column m*block + r
        cols = (Tk - Tq - m * block) + block * torch.arange(nb, device=device)[:, None] + torch.arange(S, device=device)
        ok = (cols >= 0) & (cols < Tk)  # (nb, S): clamped copies outside the keys are masked
        cols = cols.clamp(0, Tk - 1)
        if key_valid is not None:
            ok = ok & key_valid[:, cols]  # (B, nb, S)
        r = torch.arange(block, device=device)[:, None] + m * block  # (block, 1): the query's own column
        c = torch.arange(S, device=device)
        band = (c <= r) & (c > r - window)  # (block, S), the same for every block
        mask = (band & ok[..., None, :]) | (c == r)  # (B|1, nb, block, S)
        mask = mask.reshape(1, -1, block, S)
        if not cacheable:
            return cols.reshape(-1), mask
        plan = cols.reshape(-1), torch.zeros((), dtype=dtype, device=device).masked_fill(~mask, float("-inf"))
    if len(_plans) >= 8:
        _plans.clear()
    _plans[key] = plan
    return plan


_plans: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def flex_banded(q, k, v, window, key_valid=None):
    """The same band through FlexAttention with a block mask (no dropout). Compiled on CUDA, where
    ``banded_attention`` takes it; eager elsewhere (slow, for tests of its meaning only)."""
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    Tq, Tk = q.shape[2], k.shape[2]
    start = max(0, Tk - Tq - window + 1)
    k, v = k[:, :, start:], v[:, :, start:]
    offset = Tk - start - Tq  # key index of query 0, among the kept keys
    valid = key_valid[:, start:] if key_valid is not None else None

    def mask_mod(b, h, q_idx, kv_idx):
        i = q_idx + offset
        allowed = (kv_idx <= i) & (kv_idx > i - window)
        if valid is not None:
            allowed = (allowed & valid[b, kv_idx]) | (kv_idx == i)
        return allowed

    batch = valid.shape[0] if valid is not None else None
    block_mask = create_block_mask(mask_mod, batch, None, Tq, Tk - start, device=q.device)
    attend = _compiled_flex() if q.is_cuda and not torch.compiler.is_compiling() else flex_attention
    return attend(q, k, v, block_mask=block_mask)


@functools.cache
def _compiled_flex():
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)
