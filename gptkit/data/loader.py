"""Random training windows from memory-mapped shards. The sampler's RNG state is the loader's
position, saved in every checkpoint, so a resumed run sees exactly the batches it would have.

A corpus is one prepared directory or several (the parts of a ``--part`` run, or corpora prepared
apart) read as one; they must share a tokenizer. A weighted mixture (MixtureLoader) draws each row
from one of several corpora by weight instead, as GPT-3 drew its training mix. Every shard's size is checked when it is opened
and every window's ids before they leave the loader, so a damaged shard is reported by name, never
as an IndexError inside the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from gptkit.data.batches import rank_rows
from gptkit.data.encoders import saved_files
from gptkit.data.prepare import META_NAME, read_meta
from gptkit.data.shards import open_shard, read_header
from gptkit.errors import GptkitError
from gptkit.tokenizer import Tokenizer

COUNT_CHUNK = 1 << 22  # tokens counted at a time by unigram_entropy


class Corpus:
    """Prepared directories read as one corpus, in the order given."""

    def __init__(self, dirs: str | Path | Sequence[str | Path]):
        self.dirs = [Path(d) for d in ([dirs] if isinstance(dirs, (str, Path)) else dirs)]
        if not self.dirs:
            raise GptkitError("no data directory given")
        self.metas = [read_meta(d) for d in self.dirs]
        first = self.metas[0]
        self.vocab_size, self.eot_id = first["vocab_size"], first.get("eot_id")
        for d, meta in zip(self.dirs[1:], self.metas[1:]):
            if (meta["vocab_size"], meta.get("eot_id")) != (self.vocab_size, self.eot_id):
                raise GptkitError(f"{d} has a vocabulary of {meta['vocab_size']:,}, {self.dirs[0]} one of "
                                  f"{self.vocab_size:,}: prepare every directory with the same --tokenizer")
        if len(self.dirs) > 1:
            expected = saved_files(self.tokenizer)
            for d in self.dirs[1:]:
                if saved_files(Tokenizer.load(d)) != expected:
                    raise GptkitError(f"{d} was prepared with another tokenizer than {self.dirs[0]}: "
                                      "prepare every directory with the same --tokenizer")

    @cached_property
    def tokenizer(self) -> Tokenizer:
        return Tokenizer.load(self.dirs[0])

    def shards(self, split: str) -> list[tuple[Path, dict]]:
        """(path, meta.json entry) of every shard of ``split``, directory by directory."""
        return [(d / s["name"], s) for d, meta in zip(self.dirs, self.metas)
                for s in meta["splits"].get(split, {}).get("shards", [])]

    def has(self, split: str) -> bool:
        return bool(self.shards(split))

    def open(self, path: Path, entry: dict) -> np.ndarray:
        """The tokens of a shard, after checking its header against meta.json."""
        _, n_tokens, vocab_size = read_header(path)
        if vocab_size != self.vocab_size:
            raise GptkitError(f"shard {path} was written for another vocabulary than {META_NAME} says")
        if entry.get("tokens", n_tokens) != n_tokens:
            raise GptkitError(f"shard {path} holds {n_tokens:,} tokens, {META_NAME} records {entry['tokens']:,}: "
                              "it is corrupt; run 'gptkit prepare' again")
        return open_shard(path)

    def out_of_vocabulary(self, path: Path, tokens: np.ndarray) -> GptkitError:
        return GptkitError(f"shard {path} holds token id {int(tokens.max()):,}, outside the vocabulary of "
                           f"{self.vocab_size:,}: it is corrupt; run 'gptkit prepare' again")


def as_corpus(data: Corpus | str | Path | Sequence[str | Path]) -> Corpus:
    return data if isinstance(data, Corpus) else Corpus(data)


class WindowLoader:
    """Batches of (x, y) windows of ``block_size`` tokens, y shifted one to the left of x."""

    def __init__(self, data: Corpus | str | Path | Sequence[str | Path], split: str, block_size: int,
                 batch_size: int, seed: int = 0):
        self.block_size, self.batch_size = block_size, batch_size
        self.corpus = as_corpus(data)
        where = ", ".join(map(str, self.corpus.dirs))
        if not self.corpus.has(split):
            raise GptkitError(f"{where} has no {split!r} split; prepare it with a validation fraction above 0")
        self.paths = [path for path, _ in self.corpus.shards(split)]
        self.shards = [self.corpus.open(path, entry) for path, entry in self.corpus.shards(split)]
        # A shard of L tokens holds L - block_size windows of block_size + 1 tokens (x and the shifted y).
        self.windows_per_shard = np.array([max(0, len(s) - block_size) for s in self.shards], dtype=np.int64)
        self.ends = np.cumsum(self.windows_per_shard)  # global window index where each shard's windows end
        if self.windows_per_shard.sum() == 0:
            n = sum(len(s) for s in self.shards)
            raise GptkitError(
                f"the {split!r} split of {where} has {n} tokens, too few for one window of "
                f"{block_size + 1}; lower --block-size or add more text"
            )
        self.rng = np.random.default_rng(seed)
        self.rows = slice(None)  # the rows of each batch this process trains on (all but under torchrun)

    def shard(self, rank: int, world: int) -> None:
        self.rows = rank_rows(self.batch_size, rank, world)

    def __len__(self) -> int:
        return int(self.windows_per_shard.sum())

    def _window(self, i: int) -> np.ndarray:
        shard = int(np.searchsorted(self.ends, i, side="right"))
        offset = i - int(self.ends[shard] - self.windows_per_shard[shard])
        window = np.asarray(self.shards[shard][offset : offset + self.block_size + 1], dtype=np.int64)
        if int(window.max()) >= self.corpus.vocab_size:
            raise self.corpus.out_of_vocabulary(self.paths[shard], window)
        return window

    def _batch(self, rng: np.random.Generator, rows: slice = slice(None)) -> tuple[torch.Tensor, torch.Tensor]:
        starts = rng.integers(0, len(self), size=self.batch_size)[rows]
        return _pairs([self._window(int(i)) for i in starts])

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._batch(self.rng, self.rows)

    def fixed_batches(self, n: int, seed: int = 1234) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The same ``n`` batches every call: validation loss is comparable from one eval to the next."""
        rng = np.random.default_rng(seed)
        return [self._batch(rng) for _ in range(n)]

    def state_dict(self) -> dict:
        return {"bit_generator": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        if "drawn" in state:
            raise GptkitError(f"the checkpoint was drawing from a weighted mixture of {len(state['drawn'])} corpora, this "
                              "run from one corpus: resume with the --data it was started with")
        self.rng.bit_generator.state = state["bit_generator"]


class MixtureLoader:
    """Batches of windows from several corpora drawn by weight, as GPT-3 drew its training mix
    (section 2.2, Table 2.2): the weights, not the corpora's sizes, decide how often each is seen, so
    a small corpus may be seen several times while a large one is never finished.

    Each row of a batch goes to the corpus furthest behind its share of all rows drawn so far, so
    the shares hold to within one row at every step, not only on average; the window inside that
    corpus is drawn at random. The rows drawn from each corpus and the RNG are the resumable position.
    Under torchrun every process draws the whole batch and keeps its rows, as WindowLoader does.
    """

    def __init__(self, dirs: Sequence[str | Path], weights: Sequence[float], split: str, block_size: int,
                 batch_size: int, seed: int = 0):
        if len(dirs) != len(weights) or not dirs:
            raise GptkitError(f"a mixture needs one weight per directory, got {len(dirs)} directories and {len(weights)} weights")
        Corpus(dirs)  # one tokenizer for all, or a clear error
        self.names = [str(d) for d in dirs]
        self.parts = [WindowLoader(d, split, block_size, batch_size) for d in dirs]
        self.weights = np.asarray(weights, dtype=np.float64) / sum(weights)
        self.tokens = np.array([sum(len(s) for s in part.shards) for part in self.parts], dtype=np.int64)
        self.block_size, self.batch_size = block_size, batch_size
        self.rng = np.random.default_rng(seed)
        self.drawn = np.zeros(len(dirs), dtype=np.int64)  # rows drawn from each corpus (the whole job's)
        self.rows = slice(None)

    def shard(self, rank: int, world: int) -> None:
        self.rows = rank_rows(self.batch_size, rank, world)

    def _batch(self, rng: np.random.Generator, drawn: np.ndarray, rows: slice = slice(None),
               ) -> tuple[torch.Tensor, torch.Tensor]:
        corpus = assign_rows(self.weights, drawn, self.batch_size)
        starts = np.zeros(self.batch_size, dtype=np.int64)
        for k, part in enumerate(self.parts):
            mine = corpus == k
            starts[mine] = rng.integers(0, len(part), size=int(mine.sum()))
        return _pairs([self.parts[k]._window(int(i)) for k, i in zip(corpus[rows], starts[rows])])

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._batch(self.rng, self.drawn, self.rows)

    def fixed_batches(self, n: int, seed: int = 1234) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The same ``n`` batches every call, in the mixture's proportions."""
        rng, drawn = np.random.default_rng(seed), np.zeros_like(self.drawn)
        return [self._batch(rng, drawn) for _ in range(n)]

    def epochs(self) -> dict[str, float]:
        """Passes over each corpus so far: the tokens drawn from it over the tokens it holds."""
        seen = self.drawn * self.block_size / self.tokens
        return {name: round(float(e), 6) for name, e in zip(self.names, seen)}

    def progress(self) -> dict:
        """What the training log records of the position after each step."""
        return {"epochs": self.epochs()}

    def state_dict(self) -> dict:
        return {"bit_generator": self.rng.bit_generator.state, "drawn": self.drawn.tolist()}

    def load_state_dict(self, state: dict) -> None:
        drawn = state.get("drawn")
        if drawn is None or len(drawn) != len(self.parts):
            had = f"a mixture of {len(drawn)} corpora" if drawn is not None else "one corpus"
            raise GptkitError(f"the checkpoint was drawing from {had}, this run from a mixture of {len(self.parts)}: "
                              "resume with the --data it was started with")
        self.rng.bit_generator.state = state["bit_generator"]
        self.drawn = np.asarray(drawn, dtype=np.int64)


def assign_rows(weights: np.ndarray, drawn: np.ndarray, n: int) -> np.ndarray:
    """The corpus of each of the next ``n`` rows, counting them into ``drawn``: each row goes to the
    corpus whose rows fall furthest short of its weight's share (the first on a tie)."""
    shares, counts, total = weights.tolist(), drawn.tolist(), int(drawn.sum())  # Python numbers: 10x numpy's speed here
    picks = range(len(counts))
    corpus = []
    for total in range(total + 1, total + n + 1):
        k = max(picks, key=lambda j: shares[j] * total - counts[j])
        counts[k] += 1
        corpus.append(k)
    drawn[:] = counts
    return np.array(corpus, dtype=np.int64)


def _pairs(windows: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of windows of T + 1 tokens: y is x shifted one to the left."""
    data = torch.from_numpy(np.stack(windows))  # (B, T+1)
    return data[:, :-1], data[:, 1:]


def _token_counts(corpus: Corpus, split: str) -> np.ndarray:
    """How often each id occurs in ``split``, counted a chunk at a time (memory independent of shard size)."""
    counts = np.zeros(corpus.vocab_size, dtype=np.float64)
    for path, entry in corpus.shards(split):
        tokens = corpus.open(path, entry)
        for start in range(0, len(tokens), COUNT_CHUNK):
            chunk = np.asarray(tokens[start : start + COUNT_CHUNK])
            if int(chunk.max()) >= corpus.vocab_size:
                raise corpus.out_of_vocabulary(path, chunk)
            counts += np.bincount(chunk, minlength=corpus.vocab_size)
    return counts


def unigram_entropy(data: Corpus | str | Path | Sequence[str | Path], split: str = "val",
                    weights: Sequence[float] | None = None) -> float:
    """Cross-entropy (nats/token) of ``split`` under the training set's unigram distribution:
    the loss a model that ignores context would reach. A trained model should beat it clearly.

    With ``weights`` (a weighted mixture, one per directory) the distribution is the corpora's own
    mixed by weight and the loss their validation losses averaged by weight: what the mixture's
    validation batches measure."""
    corpus = as_corpus(data)
    parts = [Corpus(d) for d in corpus.dirs] if weights is not None else [corpus]
    weights = weights if weights is not None else [1.0]
    smoothed = [_token_counts(part, "train") + 1 for part in parts]  # add-one: unseen tokens get a finite cost
    logp = np.log(sum(w * (c / c.sum()) for w, c in zip(weights, smoothed)) / sum(weights))
    losses = []
    for w, part in zip(weights, parts):
        test = _token_counts(part, split)
        if test.sum():
            losses.append((w, float(-(test * logp).sum() / test.sum())))
    if not losses:
        raise GptkitError(f"{', '.join(map(str, corpus.dirs))} has no {split!r} tokens to measure the unigram baseline on")
    return sum(w * loss for w, loss in losses) / sum(w for w, _ in losses)
