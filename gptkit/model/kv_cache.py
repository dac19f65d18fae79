"""A key/value cache preallocated to the context length.

Shapes never change during generation (new keys are written in place at ``input_pos``), so the
decode step has static shapes and can be captured in a CUDA graph.
"""

from __future__ import annotations

import torch


class KVCache:
    def __init__(self, n_layer: int, batch_size: int, n_head: int, max_len: int, head_dim: int,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        shape = (n_layer, batch_size, n_head, max_len, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.valid = torch.zeros(batch_size, max_len, dtype=torch.bool, device=device)  # real tokens

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    @property
    def max_len(self) -> int:
        return self.k.shape[3]

    def reset(self) -> None:
        self.valid.zero_()

    def mark(self, input_pos: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
        """Record which of the slots being written hold real tokens (not padding)."""
        self.valid[:, input_pos] = True if attention_mask is None else attention_mask.bool()

    def update(self, layer: int, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        """Write k, v (B, nh, T, hd) at slots ``input_pos`` (T,); return the whole cache of this layer."""
        self.k[layer].index_copy_(2, input_pos, k.to(self.k.dtype))
        self.v[layer].index_copy_(2, input_pos, v.to(self.v.dtype))
        return self.k[layer], self.v[layer]
