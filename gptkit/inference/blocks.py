"""Which blocks of the paged KV cache each sequence holds, and which hold a known token prefix.

A sequence is admitted only when the blocks it may still need (its prompt plus its new tokens, at
most the context) can be promised to it, so a running sequence never waits for memory. Full blocks
are immutable once written; each is named by a digest of every token up to its end (its prefix), so
a later sequence starting with the same tokens (the next turn of a chat, the same few-shot prompt)
takes the block instead of computing it again. Blocks no sequence holds keep their prefix until the
memory is needed, least recently used first.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import OrderedDict
from dataclasses import dataclass, field

ROOT = b""  # the digest before the first block


def digest(parent: bytes, tokens: list[int]) -> bytes:
    """The name of a block holding ``tokens`` after the prefix named ``parent``."""
    return hashlib.blake2b(parent + array("q", tokens).tobytes(), digest_size=16).digest()


@dataclass
class Holding:
    """What one sequence holds: its blocks in position order, how many of them are named (full and
    registered) with the digest of the last, and how many more blocks are promised to it."""

    blocks: list[int] = field(default_factory=list)
    named: int = 0
    last: bytes = ROOT
    promised: int = 0


class Blocks:
    def __init__(self, ids: range, block_len: int, prefix_cache: bool = True):
        self.block_len, self.prefix_cache, self.cache_size = block_len, prefix_cache, len(ids)
        self.free = list(reversed(ids))  # pop() takes the lowest id: the pages already touched
        self.refs: dict[int, int] = {}  # block -> how many sequences hold it
        self.by_digest: dict[bytes, int] = {}
        self.digest_of: dict[int, bytes] = {}
        self.idle: OrderedDict[int, None] = OrderedDict()  # named blocks nobody holds, least recently used first
        self.promised = 0
        self.hit_tokens = self.looked_up_tokens = 0  # the prefix cache's hits, for /metrics

    @property
    def available(self) -> int:
        """Blocks that can still be promised."""
        return len(self.free) + len(self.idle) - self.promised

    def blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.block_len)

    def admit(self, tokens: list[int], most_tokens: int) -> Holding | None:
        """Blocks for a sequence starting with ``tokens`` that may grow to ``most_tokens``: the cached
        blocks of its longest known prefix (leaving at least its last token to compute), and a
        promise of the rest. None when the memory is not there now."""
        hits = self._match(tokens)
        need = self.blocks_for(most_tokens) - len(hits)
        if self.available - sum(b in self.idle for b in hits) < need:
            return None
        holding = Holding(named=len(hits), promised=need)
        for block in hits:
            self._hold(block)
            holding.blocks.append(block)
            holding.last = self.digest_of[block]
        self.promised += need
        self.looked_up_tokens += len(tokens)
        self.hit_tokens += len(hits) * self.block_len
        return holding

    def _match(self, tokens: list[int]) -> list[int]:
        hits, parent, L = [], ROOT, self.block_len
        if not self.prefix_cache:
            return hits
        for start in range(0, len(tokens) - 1 - L + 1, L):  # full blocks, short of the last token
            block = self.by_digest.get(parent := digest(parent, tokens[start: start + L]))
            if block is None:
                break
            hits.append(block)
        return hits

    def _hold(self, block: int) -> None:
        self.refs[block] = self.refs.get(block, 0) + 1
        self.idle.pop(block, None)

    def grow(self, holding: Holding, tokens: int) -> None:
        """Take promised blocks until ``tokens`` positions fit."""
        while len(holding.blocks) * self.block_len < tokens:
            if holding.promised == 0:
                raise RuntimeError("a sequence outgrew the blocks promised to it")
            holding.promised -= 1
            self.promised -= 1
            block = self.free.pop() if self.free else self._evict()
            self.refs[block] = 1
            holding.blocks.append(block)

    def _evict(self) -> int:
        block, _ = self.idle.popitem(last=False)
        del self.by_digest[self.digest_of.pop(block)]
        return block

    def name(self, holding: Holding, tokens: list[int]) -> None:
        """Register the full blocks of a sequence whose first ``len(tokens)`` keys are now written."""
        L = self.block_len
        while self.prefix_cache and (holding.named + 1) * L <= len(tokens):
            start, block = holding.named * L, holding.blocks[holding.named]
            holding.last = digest(holding.last, tokens[start: start + L])
            if holding.last not in self.by_digest and block not in self.digest_of:
                self.by_digest[holding.last], self.digest_of[block] = block, holding.last
            holding.named += 1

    def release(self, holding: Holding) -> None:
        """A sequence lets go of its blocks and what was promised to it."""
        for block in holding.blocks:
            self.refs[block] -= 1
            if self.refs[block] == 0:
                del self.refs[block]
                if block in self.digest_of:
                    self.idle[block] = None  # the most recently used end
                else:
                    self.free.append(block)
        self.promised -= holding.promised
        holding.blocks, holding.named, holding.last, holding.promised = [], 0, ROOT, 0
