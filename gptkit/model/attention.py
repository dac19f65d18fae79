"""Masked multi-head self-attention and the masks it needs (causal, padding, local band)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from gptkit.config import GPTConfig
from gptkit.errors import GptkitError
from gptkit.model.banded import banded_attention
from gptkit.model.kv_cache import Pages


def positions_from_mask(valid: torch.Tensor) -> torch.Tensor:
    """Position of each slot = number of real tokens before it, so left padding shifts nothing.

    valid: (B, S) bool, True where a real token sits. Returns (B, S) long; padding slots get 0.
    """
    return (valid.long().cumsum(dim=1) - 1).clamp(min=0)


def build_attention_mask(T: int, valid: torch.Tensor | None, window: int | None,
                         device: torch.device | None = None) -> torch.Tensor:
    """Boolean mask (B or 1, 1, T, T) over one whole sequence: may the token in slot q attend to slot s?

    Causal (s <= q), only real keys (``valid`` (B, T), padding on either side), and for banded
    layers only the last ``window`` positions. Every query may attend to itself so padding rows
    never see an all-False row (which would make softmax return NaN); their outputs are ignored anyway.
    """
    slots = torch.arange(T, device=valid.device if valid is not None else device)
    allowed = (slots[None, :] <= slots[:, None])[None]  # (1, T, S)
    if valid is not None:
        allowed = allowed & valid[:, None, :]  # (B, T, S)
    if window is not None:
        pos = positions_from_mask(valid) if valid is not None else slots[None]  # (B|1, S)
        allowed = allowed & (pos[:, None, :] > pos[:, :, None] - window)
    allowed = allowed | torch.eye(T, dtype=torch.bool, device=slots.device)
    return allowed[:, None]  # (B|1, 1, T, S): broadcast over heads


@dataclass
class AttentionInputs:
    """Where the T tokens being fed sit, and what each layer lets them attend to."""

    positions: torch.Tensor  # (B|1, T) their positions, padding before them not counted
    dense: torch.Tensor | None  # (B|1, 1, T, S) mask of the dense layers; None: plain causal
    valid: torch.Tensor | None  # (B, T) the real tokens, for GPT-3's banded layers (which build their own band)

    def mask(self, config: GPTConfig, layer: int) -> torch.Tensor | None:
        return self.valid if config.is_banded(layer) else self.dense


def attention_inputs(config: GPTConfig, T: int, attention_mask: torch.Tensor | None, pages: Pages | None,
                     device: torch.device) -> AttentionInputs:
    """Positions and masks for a forward pass over T new tokens, built once for all layers.

    Without a cache the tokens are the whole sequence (padded on either side by ``attention_mask``);
    with one (``pages``) they sit at their positions after what the cache holds for their row, and
    attend to every key before them: position s of a row is key s.
    """
    if pages is not None:
        q = pages.positions  # (B, T)
        causal = torch.arange(pages.n_keys, device=device) <= q[:, :, None]  # (B, T, S)
        return AttentionInputs(q, causal[:, None], None)  # banded layers: pages.band
    if T > config.block_size:
        raise GptkitError(f"sequence of length {T} exceeds the context length {config.block_size}")
    valid = attention_mask.bool() if attention_mask is not None else None  # (B, T)
    positions = torch.arange(T, device=device)[None] if valid is None else positions_from_mask(valid)  # (B|1, T)
    dense = None if valid is None else build_attention_mask(T, valid, None)  # None: SDPA's causal mask
    return AttentionInputs(positions, dense, valid)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.n_head = config.n_head
        self.window = config.local_window if config.is_banded(layer_idx) else None  # GPT-3's banded layers
        self.attn_pdrop = config.attn_pdrop
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # W_q, W_k, W_v
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)  # W_o
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        pages: Pages | None = None,
    ) -> torch.Tensor:
        """``mask``: a dense layer's (B|1, 1, T, S) mask (None: causal), a banded layer's real keys (B, S) or None."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hd)
        dropout = self.attn_pdrop if self.training else 0.0
        if self.window is not None:  # only the band: each query's last ``window`` positions
            if pages is not None:
                (k, v), mask = pages.update_band(self.layer_idx, k, v), pages.band.valid  # (B, nh, W-1+T, hd)
            y = banded_attention(q, k, v, self.window, mask, dropout)
        else:
            if pages is not None:
                k, v = pages.update(self.layer_idx, k, v)  # (B, nh, S, hd): the row's cached keys and these
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=mask is None)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble heads side by side
        return self.resid_dropout(self.c_proj(y))

