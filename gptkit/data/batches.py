"""Batches of variable-length examples: one padding helper and one shuffled-epoch batch source,
shared by fine-tuning, dialogue training, scoring and generation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import numpy as np
import torch

from gptkit.errors import GptkitError

Item = TypeVar("Item")


def rank_rows(batch_size: int, rank: int, world: int) -> slice:
    """The rows of every batch that process ``rank`` of ``world`` trains on (torchrun): its own
    1/world. Every process draws the whole batch from the same seed and keeps its slice, so the
    processes together see exactly what one process would, and the batch source's position (its
    resumable state) is the same on every process at any world size."""
    if batch_size % world:
        raise GptkitError(f"--batch-size {batch_size} does not split over {world} processes: use a multiple of "
                          f"{world} (it is the batch of the whole job; each process takes 1/{world} of it)")
    share = batch_size // world
    return slice(rank * share, (rank + 1) * share)


def pad(rows: Sequence[Sequence[int]], value: int, left: bool = False, width: int | None = None,
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask), both (len(rows), width): each row padded with ``value`` on the right (or on the
    left, so that prompts end together), mask 1 on real tokens and 0 on padding."""
    width = max((len(r) for r in rows), default=0) if width is None else width
    ids = torch.full((len(rows), width), value, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if len(row):
            span = slice(width - len(row), width) if left else slice(0, len(row))
            ids[i, span] = torch.as_tensor(row, dtype=torch.long)
            mask[i, span] = 1
    return ids, mask


class EpochBatches(Generic[Item]):
    """Shuffled whole epochs of ``items`` in batches of ``batch_size`` (the ragged tail of each epoch
    is dropped, so every step sees a full batch); the position is resumable state (a BatchSource)."""

    def __init__(self, items: list[Item], batch_size: int, collate: Callable[[list[Item]], tuple[torch.Tensor, ...]],
                 seed: int = 0):
        self.items, self.batch_size, self.collate, self.seed = items, batch_size, collate, seed
        self.epoch, self.pos = 0, 0
        self.rows = slice(None)  # the rows of each batch this process trains on (all but under torchrun)
        self._order = self._shuffle()

    def shard(self, rank: int, world: int) -> None:
        self.rows = rank_rows(self.batch_size, rank, world)

    @property
    def steps_per_epoch(self) -> int:
        return max(1, len(self.items) // self.batch_size)

    def _shuffle(self) -> np.ndarray:
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.items))

    def next_batch(self) -> tuple[torch.Tensor, ...]:
        if self.pos + self.batch_size > len(self.items) and self.pos > 0:
            self.epoch, self.pos = self.epoch + 1, 0
            self._order = self._shuffle()
        picked = self._order[self.pos: self.pos + self.batch_size][self.rows]
        self.pos += self.batch_size
        return self.collate([self.items[i] for i in picked])

    def fixed_batches(self, n: int) -> list[tuple[torch.Tensor, ...]]:
        """The first ``n`` batches in the items' own order: the same validation batches every time."""
        size = self.batch_size
        return [self.collate(self.items[i: i + size]) for i in range(0, min(n * size, len(self.items)), size)]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.pos = state["epoch"], state["pos"]
        self._order = self._shuffle()
