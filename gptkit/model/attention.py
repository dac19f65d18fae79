"""Masked multi-head self-attention and the masks it needs (causal, padding, local band)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from gptkit.config import GPTConfig
from gptkit.errors import GptkitError
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

    ``q_slots`` is (T,), or (B, T) when each row has its own. Causal (s <= q), only real keys
    (``valid``), and for banded layers only the last ``window`` positions. Every query may attend
    to itself so padding rows never see an all-False row (which would make softmax return NaN);
    their outputs are ignored anyway.
    """
    q_slots = q_slots if q_slots.dim() == 2 else q_slots[None]  # (B|1, T)
    k_slots = torch.arange(n_keys, device=q_slots.device)
    allowed = k_slots <= q_slots[:, :, None]  # (B|1, T, S)
    if valid is not None:
        allowed = allowed & valid[:, None, :]  # (B, T, S)
    if window is not None:
        k_pos = positions_from_mask(valid) if valid is not None else k_slots[None, :]  # (B|1, S)
        q_pos = slot_values(k_pos, q_slots) if valid is not None else q_slots  # (B|1, T)
        allowed = allowed & (k_pos[:, None, :] > q_pos[:, :, None] - window)
    allowed = allowed | (k_slots == q_slots[:, :, None])
    return allowed[:, None]  # (B|1, 1, T, S): broadcast over heads


def slot_values(values: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """values (B, S) at ``slots`` (T,) shared by every row, or (B|1, T) per row -> (B, T)."""
    if slots.dim() == 1:
        return values[:, slots]
    return values.gather(1, slots.expand(values.shape[0], -1))


@dataclass
class AttentionInputs:
    """Where the T tokens being fed sit, and what each layer lets them attend to."""

    input_pos: torch.Tensor  # (T,) or per row (B, T): their slots in the KV cache, or in the sequence without one
    positions: torch.Tensor  # (B|1, T) their positions, padding before them not counted
    dense: torch.Tensor | None  # (B|1, 1, T, S) mask of the dense layers; None: plain causal
    banded: torch.Tensor | None  # the same for GPT-3's locally banded layers

    def mask(self, config: GPTConfig, layer: int) -> torch.Tensor | None:
        return self.banded if config.is_banded(layer) else self.dense


def attention_inputs(config: GPTConfig, T: int, attention_mask: torch.Tensor | None, kv_cache: KVCache | None,
                     input_pos: torch.Tensor | None, device: torch.device) -> AttentionInputs:
    """Positions and masks for a forward pass over T new tokens, built once for all layers.

    Without a cache the tokens are the whole sequence; with one they are written at ``input_pos``
    ((T,), or (B, T) when each row has its own) and attend to every real token cached before them.
    """
    if kv_cache is None:
        if T > config.block_size:
            raise GptkitError(f"sequence of length {T} exceeds the context length {config.block_size}")
        input_pos, n_keys = torch.arange(T, device=device), T
        valid = attention_mask.bool() if attention_mask is not None else None  # (B, T)
    else:
        if input_pos is None:
            raise ValueError("input_pos is required with a kv_cache")
        kv_cache.mark(input_pos, attention_mask)
        n_keys = kv_cache.n_keys
        valid = kv_cache.valid[:, :n_keys]  # (B, S)
    positions = input_pos[None] if valid is None else slot_values(positions_from_mask(valid), input_pos)  # (B|1, T)
    dense = None if valid is None else build_attention_mask(input_pos, n_keys, valid, None)  # None: SDPA's causal mask
    banded = build_attention_mask(input_pos, n_keys, valid, config.local_window) if config.attention == "alternating" else None
    return AttentionInputs(input_pos, positions, dense, banded)


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
