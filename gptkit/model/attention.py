"""Masked multi-head self-attention and the masks it needs (causal, padding, local band)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from gptkit.config import GPTConfig
from gptkit.model.kv_cache import KVCache


def positions_from_mask(valid: torch.Tensor) -> torch.Tensor:
    """Position of each slot = number of real tokens before it, so left padding shifts nothing.

    valid: (B, S) bool, True where a real token sits. Returns (B, S) long; padding slots get 0.
    """
    return (valid.long().cumsum(dim=1) - 1).clamp(min=0)


def build_attention_mask(
    q_slots: torch.Tensor, n_keys: int, valid: torch.Tensor | None, window: int | None
) -> torch.Tensor:
    """Boolean mask (B or 1, 1, T, S): may query slot q attend to key slot s?

    Causal (s <= q), only real keys (``valid``), and for banded layers only the last ``window``
    positions. Every query may attend to itself so padding rows never see an all-False row
    (which would make softmax return NaN); their outputs are ignored anyway.
    """
    k_slots = torch.arange(n_keys, device=q_slots.device)
    allowed = k_slots[None, :] <= q_slots[:, None]  # (T, S)
    allowed = allowed[None]  # (1, T, S)
    if valid is not None:
        allowed = allowed & valid[:, None, :]  # (B, T, S)
    if window is not None:
        k_pos = positions_from_mask(valid) if valid is not None else k_slots[None, :]  # (B|1, S)
        q_pos = k_pos[:, q_slots] if valid is not None else q_slots[None, :]  # (B|1, T)
        allowed = allowed & (k_pos[:, None, :] > q_pos[:, :, None] - window)
    allowed = allowed | (k_slots[None, :] == q_slots[:, None])[None]
    return allowed[:, None]  # (B|1, 1, T, S): broadcast over heads


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.n_head = config.n_head
        self.attn_pdrop = config.attn_pdrop
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # W_q, W_k, W_v
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)  # W_o
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        kv_cache: KVCache | None = None,
        input_pos: torch.Tensor | None = None,
    ) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hd)
        if kv_cache is not None:
            k, v = kv_cache.update(self.layer_idx, input_pos, k, v)  # (B, nh, S, hd)
        y = F.scaled_dot_product_attention(
            q, k, v,
            attn_mask=mask,
            dropout_p=self.attn_pdrop if self.training else 0.0,
            is_causal=mask is None,
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble heads side by side
        return self.resid_dropout(self.c_proj(y))
