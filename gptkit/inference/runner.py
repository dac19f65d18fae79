"""How one forward pass runs: the uncached tokens of some sequences in, each one's next-token logits out.

The runner knows the model, the paged cache and the shapes; which sequences run is the engine's
(gptkit.inference.engine). A batch of single new tokens can run in fixed shapes: the batch padded to
a power of two (padding rows write to the trash block) and every row reading the whole context. On
CUDA that step is captured once per batch size as a CUDA graph and replayed; on the CPU the very
same function runs eagerly (the graph's twin, which the tests run), though plain eager decoding,
attending only over the keys in use, is faster there.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from gptkit.model import GPT, KVCache
from gptkit.model.kv_cache import ZERO_BLOCK

# cuDNN attention plans anew for every new shape (tens of ms in bf16); prefill shapes vary per prompt
PREFILL_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


class Cached(Protocol):
    tokens: list[int]  # the sequence as the model sees it
    cached: int  # how many of them have their keys in the cache
    blocks: list[int]  # the cache blocks holding them, in position order
    ring: list[int]  # the ring blocks of the banded layers' keys (none without banded layers)


class Runner:
    def __init__(self, model: GPT, cache: KVCache, max_batch: int, static: bool):
        self.model, self.cache, self.static = model, cache, static
        self.graphed = static and cache.k.device.type == "cuda"
        self.max_blocks = -(-model.config.block_size // cache.block_len)
        self.steps: dict[int, StaticStep] = {}  # by padded batch size

    def forward(self, seqs: list[Cached]) -> torch.Tensor:
        """Feed each sequence its uncached tokens; their keys go to its blocks; logits (n, V) of each last one."""
        new = [len(s.tokens) - s.cached for s in seqs]
        if self.static and max(new) == 1:
            return self._static_step(seqs)
        device, n, T = self.cache.k.device, len(seqs), max(new)
        ids = torch.zeros(n, T, dtype=torch.long)
        for row, (s, k) in enumerate(zip(seqs, new)):
            ids[row, :k] = torch.tensor(s.tokens[s.cached:])
        new_t = torch.tensor(new)
        pos = torch.tensor([s.cached for s in seqs])[:, None] + torch.arange(T)  # (n, T)
        real = (torch.arange(T) < new_t[:, None]).to(device) if min(new) < T else None
        first = seqs[0].blocks[0] * self.cache.block_len if n == 1 and _consecutive(seqs[0].blocks) else None
        pages = self.cache.pages(self._table(seqs, max(len(s.blocks) for s in seqs)).to(device), pos.to(device),
                                 real, max(len(s.tokens) for s in seqs), self._rings(seqs), first)
        with sdpa_kernel(PREFILL_BACKENDS) if T > 1 else contextlib.nullcontext():
            hidden = self.model(ids.to(device), kv_cache=pages, return_hidden=True)  # (n, T, n_embd)
        return self.model.lm_head(hidden[torch.arange(n), new_t - 1])  # only each row's last token

    @staticmethod
    def _table(seqs: list[Cached], width: int) -> torch.Tensor:
        """The block table (n, width): each row's blocks, then the zero block."""
        table = torch.full((len(seqs), width), ZERO_BLOCK, dtype=torch.long)
        for row, s in enumerate(seqs):
            table[row, : len(s.blocks)] = torch.tensor(s.blocks, dtype=torch.long)
        return table

    def _rings(self, seqs: list[Cached]) -> torch.Tensor | None:
        if not self.cache.ring_len:
            return None
        return torch.tensor([s.ring for s in seqs], dtype=torch.long, device=self.cache.k.device)

    def _static_step(self, seqs: list[Cached]) -> torch.Tensor:
        n = len(seqs)
        size = 1 << (n - 1).bit_length()  # the next power of two
        step = self.steps.get(size)
        if step is None:
            step = self.steps[size] = StaticStep(self.model, self.cache, size, self.max_blocks, self.graphed)
        step.ids.zero_(), step.pos.zero_(), step.real.zero_(), step.table.fill_(ZERO_BLOCK)
        step.ids[:n, 0] = torch.tensor([s.tokens[-1] for s in seqs])
        step.pos[:n, 0] = torch.tensor([s.cached for s in seqs])
        step.real[:n] = True
        step.table[:n] = self._table(seqs, self.max_blocks).to(step.table.device)
        if step.ring is not None:
            step.ring.fill_(ZERO_BLOCK)
            step.ring[:n] = self._rings(seqs)
        return step.run()[:n]


def _consecutive(blocks: list[int]) -> bool:
    """Whether the blocks follow one another in the pool (a lone sequence's usually do)."""
    return blocks == list(range(blocks[0], blocks[0] + len(blocks)))


class StaticStep:
    """One decode step in fixed shapes over fixed input buffers: what a CUDA graph captures."""

    def __init__(self, model: GPT, cache: KVCache, size: int, max_blocks: int, graphed: bool):
        device = cache.k.device
        self.model, self.cache = model, cache
        self.ids = torch.zeros(size, 1, dtype=torch.long, device=device)
        self.pos = torch.zeros(size, 1, dtype=torch.long, device=device)
        self.real = torch.zeros(size, 1, dtype=torch.bool, device=device)
        self.table = torch.zeros(size, max_blocks, dtype=torch.long, device=device)
        self.ring = torch.zeros(size, cache.ring_len, dtype=torch.long, device=device) if cache.ring_len else None
        self.graphed, self.graph, self.logits = graphed, None, None

    def forward(self) -> torch.Tensor:
        pages = self.cache.pages(self.table, self.pos, self.real, ring=self.ring)
        return self.model(self.ids, kv_cache=pages)[:, -1]  # (size, V)

    def run(self) -> torch.Tensor:
        if not self.graphed:
            return self.forward()
        if self.graph is None:  # warmed up eagerly on a side stream, then captured
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self.forward()
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.logits = self.forward()  # recorded, not run
        self.graph.replay()
        return self.logits
