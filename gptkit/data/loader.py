"""Random training windows from memory-mapped shards. The sampler's RNG state is the loader's
position, saved in every checkpoint, so a resumed run sees exactly the batches it would have."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from gptkit.data.prepare import META_NAME
from gptkit.data.shards import open_shard, read_header
from gptkit.errors import GptkitError


def read_meta(data_dir: str | Path) -> dict:
    path = Path(data_dir) / META_NAME
    if not path.is_file():
        raise GptkitError(f"{data_dir} is not a prepared data directory (no {META_NAME}); run 'gptkit prepare' first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise GptkitError(f"{path} is corrupt ({e}); run 'gptkit prepare' again") from None


class WindowLoader:
    """Batches of (x, y) windows of ``block_size`` tokens, y shifted one to the left of x."""

    def __init__(self, data_dir: str | Path, split: str, block_size: int, batch_size: int, seed: int = 0):
        self.block_size, self.batch_size = block_size, batch_size
        meta = read_meta(data_dir)
        info = meta["splits"].get(split)
        if not info or not info["shards"]:
            raise GptkitError(f"{data_dir} has no {split!r} split; prepare it with a validation fraction above 0")
        self.shards = []
        for name in info["shards"]:
            path = Path(data_dir) / name
            if read_header(path)[2] != meta["vocab_size"]:
                raise GptkitError(f"shard {path} was written for another vocabulary than {META_NAME} says")
            self.shards.append(open_shard(path))
        # A shard of L tokens holds L - block_size windows of block_size + 1 tokens (x and the shifted y).
        self.windows_per_shard = np.array([max(0, len(s) - block_size) for s in self.shards], dtype=np.int64)
        self.ends = np.cumsum(self.windows_per_shard)  # global window index where each shard's windows end
        if self.windows_per_shard.sum() == 0:
            n = sum(len(s) for s in self.shards)
            raise GptkitError(
                f"the {split!r} split of {data_dir} has {n} tokens, too few for one window of "
                f"{block_size + 1}; lower --block-size or add more text"
            )
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return int(self.windows_per_shard.sum())

    def _window(self, i: int) -> np.ndarray:
        shard = int(np.searchsorted(self.ends, i, side="right"))
        offset = i - int(self.ends[shard] - self.windows_per_shard[shard])
        return np.asarray(self.shards[shard][offset : offset + self.block_size + 1], dtype=np.int64)

    def _batch(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        starts = rng.integers(0, len(self), size=self.batch_size)
        data = torch.from_numpy(np.stack([self._window(int(i)) for i in starts]))  # (B, T+1)
        return data[:, :-1], data[:, 1:]

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._batch(self.rng)

    def fixed_batches(self, n: int, seed: int = 1234) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The same ``n`` batches every call: validation loss is comparable from one eval to the next."""
        rng = np.random.default_rng(seed)
        return [self._batch(rng) for _ in range(n)]

    def state_dict(self) -> dict:
        return {"bit_generator": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["bit_generator"]


def unigram_entropy(data_dir: str | Path, split: str = "val") -> float:
    """Cross-entropy (nats/token) of ``split`` under the training set's unigram distribution:
    the loss a model that ignores context would reach. A trained model should beat it clearly."""
    meta = read_meta(data_dir)
    V = meta["vocab_size"]
    counts = np.ones(V, dtype=np.float64)  # add-one smoothing: unseen tokens get a finite cost
    for name in meta["splits"]["train"]["shards"]:
        counts += np.bincount(open_shard(Path(data_dir) / name), minlength=V)
    logp = np.log(counts / counts.sum())
    test = np.zeros(V, dtype=np.float64)
    for name in meta["splits"].get(split, {}).get("shards", []):
        test += np.bincount(open_shard(Path(data_dir) / name), minlength=V)
    if test.sum() == 0:
        raise GptkitError(f"{data_dir} has no {split!r} tokens to measure the unigram baseline on")
    return float(-(test * logp).sum() / test.sum())
