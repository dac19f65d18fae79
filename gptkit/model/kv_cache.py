"""A key/value cache preallocated to the context length.

New keys are written in place at ``input_pos``, so the buffers never move or grow. Attention reads
them one of two ways: ``static`` reads all ``max_len`` slots (masking the empty ones), so the decode
step has the same shapes every time and can be captured in a CUDA graph; otherwise it reads only the
filled prefix, which is what eager decoding wants (on the CPU, attention over 100 slots, not 1,024).

``input_pos`` is (T,) when every row writes the same slots (a batch decoded together), or (B, T) when
each row has its own (continuous batching: sequences join and leave at different lengths, each in a
row of its own, see ``rows`` and ``move``).
"""

from __future__ import annotations

import copy

import torch


class KVCache:
    def __init__(self, n_layer: int, batch_size: int, n_head: int, max_len: int, head_dim: int,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, static: bool = True):
        shape = (n_layer, batch_size, n_head, max_len, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.valid = torch.zeros(batch_size, max_len, dtype=torch.bool, device=device)  # real tokens
        self.static = static
        self.end = 0  # slots [0, end) have been written since the last reset

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    @property
    def max_len(self) -> int:
        return self.k.shape[3]

    @property
    def n_keys(self) -> int:
        """How many slots attention reads."""
        return self.max_len if self.static else self.end

    def reset(self) -> None:
        self.valid.zero_()
        self.end = 0

    def mark(self, input_pos: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
        """Record which of the slots being written hold real tokens (not padding)."""
        if input_pos.dim() == 2:
            filled = torch.ones_like(input_pos, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
            self.valid.scatter_(1, input_pos, filled)
        elif attention_mask is None:
            self.valid.index_fill_(1, input_pos, True)
        else:
            self.valid.index_copy_(1, input_pos, attention_mask.bool())
        if not self.static:  # reads input_pos on the host: no CUDA graph here
            self.end = max(self.end, int(input_pos.max()) + 1)

    def update(self, layer: int, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        """Write k, v (B, nh, T, hd) at slots ``input_pos`` (T,) or (B, T); return this layer's keys and
        values (B, nh, n_keys, hd)."""
        if input_pos.dim() == 2:
            rows = torch.arange(input_pos.shape[0], device=input_pos.device)[:, None]  # (B, 1)
            self.k[layer][rows, :, input_pos] = k.transpose(1, 2).to(self.k.dtype)  # indexed as (B, T, nh, hd)
            self.v[layer][rows, :, input_pos] = v.transpose(1, 2).to(self.v.dtype)
        else:
            self.k[layer].index_copy_(2, input_pos, k.to(self.k.dtype))
            self.v[layer].index_copy_(2, input_pos, v.to(self.v.dtype))
        return self.k[layer, :, :, : self.n_keys], self.v[layer, :, :, : self.n_keys]

    def keep(self, rows: torch.Tensor) -> None:
        """Drop every batch row not in ``rows`` (e.g. finished ones), so they stop costing compute."""
        self.k, self.v, self.valid = self.k[:, rows], self.v[:, rows], self.valid[rows]

    def rows(self, start: int, stop: int) -> KVCache:
        """Rows [start, stop) as a cache of their own that writes into this one's buffers (no copy).
        Its ``end`` starts at 0: a non-static view reads only as far as its rows were written."""
        view = copy.copy(self)
        view.k, view.v, view.valid = self.k[:, start:stop], self.v[:, start:stop], self.valid[start:stop]
        view.end = 0
        return view

    def move(self, src: int, dst: int) -> None:
        """Copy row ``src`` over row ``dst`` (keys, values and which slots are real)."""
        self.k[:, dst], self.v[:, dst], self.valid[dst] = self.k[:, src], self.v[:, src], self.valid[src]
