"""The paged key/value cache: one pool of fixed-size blocks that sequences take as they grow.

A sequence's keys and values live in the blocks its *block table* lists, in order: position p sits in
block ``table[p // block_len]`` at offset ``p % block_len``. Memory follows the tokens in use, not
rows x context, and a block whose tokens another sequence shares (a chat's earlier turns) can be read
by both: which blocks a sequence holds is the engine's business (gptkit.inference.blocks); this
module only stores them and reads and writes them for one forward pass (``Pages``).

Two blocks are reserved: block 0 stays zero and is what a row reads past its end (zeros, never
uninitialised memory, whose NaNs would leak through attention's masked-out weights), and block 1
takes the writes of padding tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

ZERO_BLOCK, TRASH_BLOCK = 0, 1
RESERVED_BLOCKS = 2


class KVCache:
    """The pool: keys and values of every layer, (n_layer, n_blocks * block_len, n_head, head_dim).

    Allocated with ``torch.empty``: on the CPU its pages take memory only once written, so a large
    pool costs what the sequences in it use.
    """

    def __init__(self, n_layer: int, n_blocks: int, block_len: int, n_head: int, head_dim: int,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        shape = (n_layer, (RESERVED_BLOCKS + n_blocks) * block_len, n_head, head_dim)
        self.k = torch.empty(shape, device=device, dtype=dtype)
        self.v = torch.empty(shape, device=device, dtype=dtype)
        self.k[:, :block_len].zero_()
        self.v[:, :block_len].zero_()
        self.block_len, self.n_blocks = block_len, n_blocks

    @property
    def blocks(self) -> range:
        """The ids of the blocks sequences may take."""
        return range(RESERVED_BLOCKS, RESERVED_BLOCKS + self.n_blocks)

    @staticmethod
    def bytes_per_token(n_layer: int, n_head: int, head_dim: int, dtype: torch.dtype) -> int:
        return 2 * n_layer * n_head * head_dim * dtype.itemsize

    def pages(self, table: torch.Tensor, input_pos: torch.Tensor, real: torch.Tensor | None = None,
              n_keys: int | None = None) -> Pages:
        """Where a forward pass writes its T new tokens and what it reads (see Pages).

        table (B, max_blocks) block ids; input_pos (B, T) or shared (T,) positions of the new tokens;
        real (B, T) marks the real ones (padding writes to the trash block); the rows read keys at
        positions [0, n_keys), by default as far as the table reaches (fixed shapes: CUDA graphs).
        """
        B, L = table.shape[0], self.block_len
        input_pos = input_pos.expand(B, -1) if input_pos.dim() == 1 else input_pos
        last = input_pos if real is None else torch.where(real, input_pos, -1)
        end = (last.amax(dim=1) + 1).clamp(min=1)  # (B,): each row's length after this pass
        n_keys = n_keys or table.shape[1] * L
        write = table.gather(1, input_pos.clamp(max=table.shape[1] * L - 1) // L) * L + input_pos % L
        if real is not None:
            write = torch.where(real, write, TRASH_BLOCK * L)
        s = torch.arange(n_keys, device=table.device)
        read = table[:, s // L] * L + s % L  # (B, S): the slot of each position
        read = torch.where(s < end[:, None], read, ZERO_BLOCK * L)
        return Pages(self, write, read, torch.minimum(input_pos, end[:, None] - 1))


@dataclass
class Pages:
    """One forward pass's view of the cache: the slots its new tokens are written to (B, T), the slots
    each row reads in position order (B, S), and the positions the new tokens attend from (B, T):
    a padding token's is clamped to its row's last real one, so it sees real keys (no NaN) and a
    learned position embedding has it."""

    cache: KVCache
    write: torch.Tensor
    read: torch.Tensor
    positions: torch.Tensor

    @property
    def n_keys(self) -> int:
        return self.read.shape[1]

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v (B, nh, T, hd) at their slots; this layer's keys and values (B, nh, S, hd)."""
        B, nh, T, hd = k.shape
        slots, read = self.write.reshape(-1), self.read.reshape(-1)
        out = []
        for store, new in ((self.cache.k[layer], k), (self.cache.v[layer], v)):
            store.index_copy_(0, slots, new.transpose(1, 2).reshape(B * T, nh, hd).to(store.dtype))
            out.append(store.index_select(0, read).view(B, -1, nh, hd).transpose(1, 2))  # (B, nh, S, hd)
        return out[0], out[1]


class RowCache:
    """A cache of ``batch_size`` rows of ``max_len`` positions each (rows own fixed blocks): for a
    caller that feeds every row the same positions, chunk by chunk (the model's own tests, parity
    checks against transformers)."""

    def __init__(self, cache: KVCache, batch_size: int, max_len: int):
        per_row = -(-max_len // cache.block_len)
        self.cache = cache
        self.table = torch.arange(per_row * batch_size, device=cache.k.device).view(batch_size, per_row) + RESERVED_BLOCKS

    def pages(self, input_pos: torch.Tensor, real: torch.Tensor | None = None) -> Pages:
        n_keys = int(input_pos.max()) + 1
        return self.cache.pages(self.table, input_pos, real, n_keys)
