"""The paged key/value cache: one pool of fixed-size blocks that sequences take as they grow.

A sequence's keys and values live in the blocks its *block table* lists, in order: position p sits in
block ``table[p // block_len]`` at offset ``p % block_len``. Memory follows the tokens in use, not
rows x context, and a block whose tokens another sequence shares (a chat's earlier turns) can be read
by both: which blocks a sequence holds is the engine's business (gptkit.inference.blocks); this
module only stores them and reads and writes them for one forward pass (``Pages``).

GPT-3's locally banded layers never look further back than their window, so they keep their keys
apart, in a *ring* of blocks per sequence: position p in ring block ``ring[(p // block_len) % R]``,
R blocks holding at least the last ``window`` positions. Their cache stops growing past the window.

Two blocks of each pool are reserved: block 0 stays zero and is what a row reads where it has no key
(zeros, never uninitialised memory, whose NaNs would leak through attention's masked-out weights),
and block 1 takes the writes of padding tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

ZERO_BLOCK, TRASH_BLOCK = 0, 1
RESERVED_BLOCKS = 2


def pool(n_layer: int, n_blocks: int, block_len: int, n_head: int, head_dim: int, device, dtype) -> torch.Tensor:
    """Keys or values of ``n_layer`` layers in ``n_blocks`` blocks (plus the reserved ones), the zero
    block zeroed. ``torch.empty``: on the CPU its pages take memory only once written."""
    store = torch.empty(n_layer, (RESERVED_BLOCKS + n_blocks) * block_len, n_head, head_dim, device=device, dtype=dtype)
    store[:, :block_len].zero_()
    return store


class KVCache:
    """The pools: dense layers' keys and values (n_dense, slots, n_head, head_dim), paged by block
    tables; banded layers' (n_banded, ring slots, n_head, head_dim), in ``rings`` rings of ``ring_len`` blocks."""

    def __init__(self, banded: list[bool], n_blocks: int, block_len: int, n_head: int, head_dim: int,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 window: int | None = None, rings: int = 0):
        self.block_len, self.n_blocks, self.window = block_len, n_blocks, window
        self.index = [sum(b == kind for b in banded[:i]) for i, kind in enumerate(banded)]  # in its pool
        self.banded = banded
        shape = (block_len, n_head, head_dim, device, dtype)
        self.k, self.v = (pool(banded.count(False), n_blocks, *shape) for _ in range(2))
        self.ring_len = -(-(window - 1) // block_len) + 1 if window else 0  # blocks: >= window - 1 back, and the newest
        self.ring_blocks = rings * self.ring_len
        self.kb, self.vb = (pool(banded.count(True), self.ring_blocks, *shape) for _ in range(2))
        self.gathered: list[torch.Tensor] = [self.k.new_empty(0), self.v.new_empty(0)]  # see ``gather_buffers``

    def gather_buffers(self, slots: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Two buffers of ``slots`` positions that every layer of a forward pass gathers its keys and
        values into, reused pass after pass; None where autograd may save them (fresh ones then).
        Why: past 32 MB a fresh gather per layer is mapped and unmapped by glibc's allocator each
        time, and its page faults cost more than the copy (a decode step of GPT-2 at 64 rows x 200
        keys took 1.65x as long: benchmarks/decode_step.py)."""
        if torch.is_grad_enabled():
            return None
        need = slots * self.k[0, 0].numel()
        if self.gathered[0].numel() < need:  # doubling: a batch whose keys grow a position a step rarely reallocates
            self.gathered = [buf.new_empty(max(need, 2 * buf.numel())) for buf in self.gathered]
        return self.gathered[0][:need], self.gathered[1][:need]

    @property
    def blocks(self) -> range:
        """The ids of the blocks sequences may take."""
        return range(RESERVED_BLOCKS, RESERVED_BLOCKS + self.n_blocks)

    @property
    def rings(self) -> range:
        """The ids of the ring blocks sequences may take (a ring is ``ring_len`` of them)."""
        return range(RESERVED_BLOCKS, RESERVED_BLOCKS + self.ring_blocks)

    def bytes_per_token(self) -> int:
        """Bytes a position takes in the paged pool (the dense layers' keys and values)."""
        return 2 * self.k[0, 0].numel() * self.k.dtype.itemsize * self.k.shape[0]

    def pages(self, table: torch.Tensor, input_pos: torch.Tensor, real: torch.Tensor | None = None,
              n_keys: int | None = None, ring: torch.Tensor | None = None, first_slot: int | None = None) -> Pages:
        """Where a forward pass writes its T new tokens and what it reads (see Pages).

        table (B, max_blocks) block ids; input_pos (B, T) or shared (T,) positions of the new tokens
        (consecutive in a row); real (B, T) marks the real ones (padding writes to the trash block);
        the rows read keys at positions [0, n_keys), by default as far as the table reaches (fixed
        shapes: CUDA graphs); ring (B, ring_len) each row's ring blocks, for banded layers;
        first_slot: with a single row (B = 1) whose blocks are consecutive, the slot of its first key:
        its keys are then read in place, no copy.
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
        band = None if ring is None else self._band(ring, input_pos, real, end)
        return Pages(self, write, read, torch.minimum(input_pos, end[:, None] - 1), band, first_slot)

    def _band(self, ring: torch.Tensor, input_pos: torch.Tensor, real: torch.Tensor | None, end: torch.Tensor) -> Band:
        L, R = self.block_len, ring.shape[1]

        def slot(p: torch.Tensor) -> torch.Tensor:
            return ring.gather(1, (p // L) % R) * L + p % L

        past = input_pos[:, :1] - (self.window - 1) + torch.arange(self.window - 1, device=ring.device)  # (B, W-1)
        past_valid = past >= 0
        read = torch.where(past_valid, slot(past.clamp(min=0)), ZERO_BLOCK * L)
        # only the newest (R - 1) blocks' worth is written: older positions of a long chunk would wrap around
        keep = input_pos >= end[:, None] - (R - 1) * L
        new_valid = torch.ones_like(keep) if real is None else real
        write = torch.where(keep & new_valid, slot(input_pos), TRASH_BLOCK * L)
        return Band(write, read, torch.cat([past_valid, new_valid], dim=1))


@dataclass
class Band:
    """A banded layer's view for one pass: where the new keys go in the rings (B, T), where the
    ``window - 1`` positions before them are read from (B, W-1), and which of those and the new
    ones are real keys (B, W-1+T)."""

    write: torch.Tensor
    read: torch.Tensor
    valid: torch.Tensor


@dataclass
class Pages:
    """One forward pass's view of the cache: the slots its new tokens are written to (B, T), the slots
    each row reads in position order (B, S), and the positions the new tokens attend from (B, T):
    a padding token's is clamped to its row's last real one, so it sees real keys (no NaN) and a
    learned position embedding has it. ``band``: the same for banded layers' rings."""

    cache: KVCache
    write: torch.Tensor
    read: torch.Tensor
    positions: torch.Tensor
    band: Band | None = None
    first_slot: int | None = None  # the one row's keys are slots [first_slot, first_slot + n_keys): read in place

    @property
    def n_keys(self) -> int:
        return self.read.shape[1]

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write a dense layer's k, v (B, nh, T, hd) at their slots; its keys and values (B, nh, S, hd)."""
        i = self.cache.index[layer]
        if self.first_slot is not None:
            pools = self.cache.k[i], self.cache.v[i]
            for pool, new in zip(pools, (k, v)):
                store(pool, new, self.write, None)
            return tuple(p[self.first_slot: self.first_slot + self.n_keys][None].transpose(1, 2) for p in pools)
        out = self.cache.gather_buffers(self.read.numel()) or (None, None)
        return (store(self.cache.k[i], k, self.write, self.read, out[0]),
                store(self.cache.v[i], v, self.write, self.read, out[1]))

    def update_band(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A banded layer's keys and values (B, nh, W-1+T, hd): the ``window - 1`` positions before the
        new ones (from its ring; ``band.valid`` says which are real), then the new ones, which the ring
        keeps. The new keys are used as computed, not read back: a long chunk overwrites its own start."""
        i, band = self.cache.index[layer], self.band
        out = []
        for ring, new in ((self.cache.kb[i], k), (self.cache.vb[i], v)):
            past = store(ring, None, None, band.read)  # read before the write, which may wrap over it
            store(ring, new, band.write, None)
            out.append(torch.cat([past.to(new.dtype), new], dim=2))
        return out[0], out[1]


def store(pool: torch.Tensor, new: torch.Tensor | None, write: torch.Tensor | None,
          read: torch.Tensor | None, out: torch.Tensor | None = None) -> torch.Tensor | None:
    """Write ``new`` (B, nh, T, hd) at slots ``write`` (B, T) of one layer's pool (slots, nh, hd),
    then read slots ``read`` (B, S) as (B, nh, S, hd) (index_select: advanced indexing is 60x slower),
    into ``out`` (as many elements) if given."""
    _, nh, hd = pool.shape
    if new is not None:
        B, _, T, _ = new.shape
        pool.index_copy_(0, write.reshape(-1), new.transpose(1, 2).reshape(B * T, nh, hd).to(pool.dtype))
    if read is None:
        return None
    index = read.reshape(-1)
    got = pool.index_select(0, index) if out is None else torch.index_select(pool, 0, index, out=out.view(-1, nh, hd))
    return got.view(read.shape[0], -1, nh, hd).transpose(1, 2)


class RowCache:
    """A cache of ``batch_size`` rows of ``max_len`` positions each (rows own fixed blocks and rings):
    for a caller that feeds every row the same positions, chunk by chunk (the model's own tests,
    parity checks against transformers)."""

    def __init__(self, cache: KVCache, batch_size: int, max_len: int):
        per_row = -(-max_len // cache.block_len)
        device = cache.k.device
        self.cache = cache
        self.table = torch.arange(per_row * batch_size, device=device).view(batch_size, per_row) + RESERVED_BLOCKS
        self.ring = None
        if cache.ring_len:
            self.ring = torch.arange(cache.ring_len * batch_size, device=device).view(batch_size, -1) + RESERVED_BLOCKS

    def pages(self, input_pos: torch.Tensor, real: torch.Tensor | None = None) -> Pages:
        n_keys = int(input_pos.max()) + 1
        return self.cache.pages(self.table, input_pos, real, n_keys, self.ring)
