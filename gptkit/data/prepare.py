"""Text -> token shards: documents joined by the end-of-text token, split into train/val."""

from __future__ import annotations

import json
import multiprocessing as mp
import random
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gptkit.data.documents import Document, expand_inputs, read_documents
from gptkit.data.shards import token_dtype, write_shard
from gptkit.errors import GptkitError
from gptkit.io import write_text
from gptkit.tokenizer import EOT, Tokenizer

META_NAME = "meta.json"
_worker_tokenizer: Tokenizer | None = None


def _init_worker(tokenizer: Tokenizer) -> None:
    global _worker_tokenizer
    _worker_tokenizer = tokenizer


def _encode_chunk(chunk: list[tuple[str, str]]) -> list[tuple[str, np.ndarray, int]]:
    """[(split, text)] -> [(split, tokens with a leading end-of-text, n_bytes)]."""
    tok = _worker_tokenizer
    ids = tok.encode_batch([text for _, text in chunk], allow_special=False)
    return [(split, np.array([tok.eot_id, *doc], dtype=np.int64), len(text.encode("utf-8")))
            for (split, text), doc in zip(chunk, ids)]


class _ShardWriter:
    def __init__(self, out_dir: Path, split: str, vocab_size: int, shard_tokens: int):
        self.out_dir, self.split, self.vocab_size, self.shard_tokens = out_dir, split, vocab_size, shard_tokens
        self.buffer: list[np.ndarray] = []
        self.buffered = 0
        self.shards: list[str] = []
        self.tokens = 0
        self.documents = 0

    def add(self, tokens: np.ndarray) -> None:
        self.buffer.append(tokens)
        self.buffered += tokens.size
        self.documents += 1
        while self.buffered >= self.shard_tokens:
            self._flush(self.shard_tokens)

    def _flush(self, n: int) -> None:
        data = np.concatenate(self.buffer)
        name = f"{self.split}-{len(self.shards):05d}.bin"
        write_shard(self.out_dir / name, data[:n], self.vocab_size)
        self.shards.append(name)
        self.tokens += n
        rest = data[n:]
        self.buffer, self.buffered = ([rest] if rest.size else []), rest.size

    def close(self) -> dict:
        if self.buffered:
            self._flush(self.buffered)
        return {"shards": self.shards, "tokens": self.tokens, "documents": self.documents}


def _chunks(docs: Iterable[tuple[str, Document]], size: int) -> Iterator[list[tuple[str, str]]]:
    chunk: list[tuple[str, str]] = []
    for split, doc in docs:
        chunk.append((split, doc.text))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def prepare(
    docs: Iterable[tuple[str, Document]],
    tokenizer: Tokenizer,
    out_dir: str | Path,
    workers: int = 1,
    shard_tokens: int = 100_000_000,
    total_bytes: int | None = None,
    progress: bool = True,
) -> dict:
    """Tokenize (split, document) pairs into shards in ``out_dir``; returns the written meta.json."""
    if tokenizer.eot_id is None:
        raise GptkitError(f"documents are joined by {EOT}, which this tokenizer lacks; add it with add_special_tokens")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writers = {s: _ShardWriter(out_dir, s, tokenizer.vocab_size, shard_tokens) for s in ("train", "val")}
    bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc="tokenizing", disable=not progress)
    chunks = _chunks(docs, 64)
    if workers > 1:
        pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(tokenizer,))
        results = pool.imap(_encode_chunk, chunks)
    else:
        pool = None
        _init_worker(tokenizer)
        results = map(_encode_chunk, chunks)
    try:
        for encoded in results:
            for split, tokens, n_bytes in encoded:
                writers[split].add(tokens)
                bar.update(n_bytes)
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    splits = {s: w.close() for s, w in writers.items()}
    if splits["train"]["tokens"] <= splits["train"]["documents"]:  # nothing but end-of-text separators
        raise GptkitError("the corpus is empty: no training text was found in the inputs")
    meta = {
        "format": "gptkit-shards", "version": 1, "vocab_size": tokenizer.vocab_size, "eot_id": tokenizer.eot_id,
        "dtype": token_dtype(tokenizer.vocab_size).name, "splits": splits,
    }
    tokenizer.save(out_dir)
    write_text(out_dir / META_NAME, json.dumps(meta, indent=2) + "\n")
    return meta


def split_files(files: list[Path], val_fraction: float, seed: int = 0) -> Iterator[tuple[str, Document]]:
    """(split, document) for every document in ``files``, holding out a seeded ``val_fraction``.

    Whole documents go to validation; a corpus of a single document is split at a line boundary.
    """
    counts = [sum(1 for _ in read_documents(f)) if f.suffix.lower() == ".jsonl" else 1 for f in files]
    n = sum(counts)
    if n == 0:
        raise GptkitError("the corpus is empty: the input files hold no documents")
    n_val = 0 if val_fraction <= 0 else min(n - 1, max(1, round(n * val_fraction)))
    val = set(random.Random(seed).sample(range(n), n_val)) if n > 1 else set()
    i = 0
    for f in files:
        for doc in read_documents(f):
            if n == 1 and val_fraction > 0:
                yield from _split_text(doc, val_fraction)
            else:
                yield ("val" if i in val else "train"), doc
            i += 1


def _split_text(doc: Document, val_fraction: float) -> Iterator[tuple[str, Document]]:
    target = int(len(doc.text) * (1 - val_fraction))
    # The last line break before the target, but no further back than the validation part is long
    # (else a title line followed by one long paragraph would send nearly everything to validation).
    cut = doc.text.rfind("\n", max(0, 2 * target - len(doc.text)), target) + 1 or target
    yield "train", Document(doc.text[:cut], doc.source)
    yield "val", Document(doc.text[cut:], doc.source)


def prepare_files(inputs: list[str], tokenizer: Tokenizer, out_dir: str | Path, val_fraction: float = 0.05,
                  seed: int = 0, **kwargs) -> dict:
    files = expand_inputs(inputs)
    total = sum(f.stat().st_size for f in files)
    if total == 0:
        raise GptkitError(f"the corpus is empty: {', '.join(map(str, files[:3]))} hold no text")
    return prepare(split_files(files, val_fraction, seed), tokenizer, out_dir, total_bytes=total, **kwargs)


def iter_texts(inputs: list[str]) -> Iterator[str]:
    """Every document's text in ``inputs`` (for training a tokenizer)."""
    for f in expand_inputs(inputs):
        for doc in read_documents(f):
            yield doc.text
