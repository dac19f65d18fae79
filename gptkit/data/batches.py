"""Batches of variable-length examples: one padding helper and one shuffled-epoch batch source,
shared by fine-tuning, dialogue training, scoring and generation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import numpy as np
import torch

Item = TypeVar("Item")


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
        self._order = self._shuffle()

    @property
    def steps_per_epoch(self) -> int:
        return max(1, len(self.items) // self.batch_size)

    def _shuffle(self) -> np.ndarray:
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.items))

    def next_batch(self) -> tuple[torch.Tensor, ...]:
        if self.pos + self.batch_size > len(self.items) and self.pos > 0:
            self.epoch, self.pos = self.epoch + 1, 0
            self._order = self._shuffle()
        picked = self._order[self.pos: self.pos + self.batch_size]
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
