"""Text -> token shards: each document preceded by the end-of-text token, split into train/val.

The main thread reads documents and cuts them into segments (gptkit.data.segments); worker threads
encode batches of segments; the main thread writes each split's tokens, in document order, into
shards of exactly ``shard_tokens`` tokens (the last one shorter). The output depends only on the
inputs and settings, never on the number of workers.

Resuming: after every finished shard a state file records, per split, the shards written and where
the next shard starts (document, segment, token). A run started again with the same inputs and
settings keeps those shards, re-reads the documents without re-encoding those already written, and
ends with the same files an uninterrupted run writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gptkit.data.documents import Document, TextFile, shakespeare_splits
from gptkit.data.encoders import Encode, make_encoder, saved_files, tokenizer_digest
from gptkit.data.plan import check_val_fraction, parse_part, plan_inputs, resume_key
from gptkit.data.segments import segments
from gptkit.data.shards import ShardWriter, shard_sha256, token_dtype
from gptkit.data.vocab import tokenizer_from_spec
from gptkit.errors import GptkitError
from gptkit.io import atomic_path, read_json, write_text
from gptkit.run_dir import check_output, owned
from gptkit.tokenizer import EOT, Tokenizer

META_NAME = "meta.json"
STATE_NAME = ".prepare-state.json"
META_VERSION = 2
SPLITS = ("train", "val")
BATCH_CHARS = 1 << 20  # text per unit of work handed to a worker
log = logging.getLogger(__name__)


@dataclass
class Batch:
    """Consecutive segments of one split, encoded together by one worker."""

    split: str
    skip: int  # tokens of the first segment already written by an earlier run
    texts: list[str] = field(default_factory=list)
    places: list[tuple[int, int]] = field(default_factory=list)  # (document, segment) of each text
    chars: int = 0


@dataclass
class Encoded:
    tokens: np.ndarray  # the batch's tokens, concatenated
    lengths: np.ndarray  # tokens per text
    new_documents: np.ndarray  # per text: 1 if it starts a document not counted before
    new_bytes: np.ndarray  # per text: its UTF-8 bytes, unless counted before


def encode_batch(encode: Encode, eot_id: int, batch: Batch) -> Encoded:
    """Runs in a worker thread: the batch's ids, each document's first segment preceded by end-of-text."""
    eot = np.array([eot_id], dtype=np.uint32)
    arrays = encode(batch.texts)
    firsts = [segment == 0 for _, segment in batch.places]
    tokens = np.concatenate([part for ids, first in zip(arrays, firsts) for part in ((eot, ids) if first else (ids,))])
    lengths = np.array([len(ids) + first for ids, first in zip(arrays, firsts)], dtype=np.int64)
    lengths[0] -= batch.skip
    fresh = np.ones(len(batch.texts), dtype=np.int64)
    fresh[0] = batch.skip == 0
    n_bytes = np.array([len(t) if t.isascii() else len(t.encode("utf-8")) for t in batch.texts], dtype=np.int64)
    return Encoded(tokens[batch.skip:], lengths, fresh * np.array(firsts, dtype=np.int64), fresh * n_bytes)


class SplitWriter:
    """One split's shards. ``state`` is what is safely on disk: finished shards, where the next one
    starts, and the documents and bytes before that point."""

    def __init__(self, out_dir: Path, split: str, vocab_size: int, shard_tokens: int, state: dict):
        self.out_dir, self.split, self.vocab_size, self.shard_tokens = out_dir, split, vocab_size, shard_tokens
        self.state = state
        self.documents, self.bytes = state["documents"], state["bytes"]
        self.shard: ShardWriter | None = None

    def add(self, batch: Batch, encoded: Encoded) -> bool:
        """Write the batch's tokens; whether a shard was finished (so the state changed)."""
        ends, pos, finished = np.cumsum(encoded.lengths), 0, False
        while pos < len(encoded.tokens):
            if self.shard is None:
                name = f"{self.split}-{len(self.state['shards']):05d}.bin"
                self.shard = ShardWriter(self.out_dir / name, self.vocab_size)
            n = min(self.shard_tokens - self.shard.count, len(encoded.tokens) - pos)
            self.shard.write(encoded.tokens[pos : pos + n])
            pos += n
            if self.shard.count == self.shard_tokens:
                self._finish_shard(batch, encoded, ends, pos)
                finished = True
        self.documents += int(encoded.new_documents.sum())
        self.bytes += int(encoded.new_bytes.sum())
        return finished

    def _finish_shard(self, batch: Batch, encoded: Encoded, ends: np.ndarray, pos: int) -> None:
        last = int(np.searchsorted(ends, pos))  # the text holding the shard's last token
        document, segment = batch.places[last]
        offset = pos - int(ends[last] - encoded.lengths[last]) + (batch.skip if last == 0 else 0)
        self.state = {
            "shards": [*self.state["shards"], self.shard.close()],
            "next": [document, segment, offset],
            "documents": self.documents + int(encoded.new_documents[: last + 1].sum()),
            "bytes": self.bytes + int(encoded.new_bytes[: last + 1].sum()),
        }
        self.shard = None

    @property
    def tokens(self) -> int:
        return sum(s["tokens"] for s in self.state["shards"]) + (self.shard.count if self.shard else 0)

    def close(self) -> dict:
        shards = self.state["shards"] + ([self.shard.close()] if self.shard else [])
        return {"shards": shards, "tokens": sum(s["tokens"] for s in shards), "documents": self.documents,
                "bytes": self.bytes}

    def abort(self) -> None:
        if self.shard:
            self.shard.abort()


def _fresh_state() -> dict:
    return {"shards": [], "next": [0, 0, 0], "documents": 0, "bytes": 0}


class Output:
    """The output directory: resumes the unfinished run of the same ``key``, else starts afresh.

    Anything ``prepare`` may have left (shards, meta.json, temporary files) that the resumed state
    does not list is removed first, so a directory never mixes two runs.
    """

    def __init__(self, out_dir: Path, vocab_size: int, shard_tokens: int, key: str | None):
        self.out_dir, self.key = out_dir, key
        out_dir.mkdir(parents=True, exist_ok=True)
        state = self._resumable()
        kept = {s["name"] for split in state.values() for s in split["shards"]}
        for pattern in ("train-*.bin", "val-*.bin", ".*.tmp", META_NAME):
            for path in out_dir.glob(pattern):
                if path.name not in kept:
                    path.unlink()
        if kept:
            log.info("resuming the unfinished prepare in %s: %d finished shards kept", out_dir, len(kept))
        self.writers = {s: SplitWriter(out_dir, s, vocab_size, shard_tokens, state[s]) for s in SPLITS}
        self._save()

    def _resumable(self) -> dict[str, dict]:
        """The saved state of an unfinished run of the same key whose shards are intact, else a fresh one."""
        fresh = {s: _fresh_state() for s in SPLITS}
        path = self.out_dir / STATE_NAME
        if self.key is None or not path.is_file():
            return fresh
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            splits = saved["splits"] if saved["key"] == self.key else fresh
            shards = [(self.out_dir / s["name"], s["sha256"]) for split in SPLITS for s in splits[split]["shards"]]
        except (ValueError, KeyError, TypeError):  # not a state file this gptkit wrote
            return fresh
        for shard, sha256 in shards:
            if not shard.is_file() or shard_sha256(shard) != sha256:
                log.warning("%s is missing or damaged: preparing %s from the start", shard, self.out_dir)
                return fresh
        return splits

    def resume_points(self) -> dict[str, tuple[int, int, int]]:
        return {s: tuple(w.state["next"]) for s, w in self.writers.items()}

    def add(self, batch: Batch, encoded: Encoded) -> None:
        if self.writers[batch.split].add(batch, encoded):
            self._save()

    def _save(self) -> None:
        state = {"key": self.key, "splits": {s: w.state for s, w in self.writers.items()}}
        write_text(self.out_dir / STATE_NAME, json.dumps(state) + "\n")

    def finish(self, tokenizer: Tokenizer, files: dict[str, bytes]) -> dict:
        """Close the last shards, write the tokenizer's ``files`` and meta.json, and forget the state."""
        splits = {s: w.close() for s, w in self.writers.items()}
        if splits["train"]["tokens"] <= splits["train"]["documents"]:  # nothing but end-of-text separators
            raise GptkitError("the corpus is empty: no training text was found in the inputs")
        meta = {
            "format": "gptkit-shards", "version": META_VERSION, "vocab_size": tokenizer.vocab_size,
            "eot_id": tokenizer.eot_id, "dtype": token_dtype(tokenizer.vocab_size).name, "splits": splits,
        }
        for name, data in files.items():
            with atomic_path(self.out_dir / name) as tmp:
                tmp.write_bytes(data)
        write_text(self.out_dir / META_NAME, json.dumps(meta, indent=2) + "\n")
        (self.out_dir / STATE_NAME).unlink()
        return meta

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()


def _texts(docs: Iterable[tuple[str, Document | TextFile]], resume: dict[str, tuple[int, int, int]],
           splittable: bool) -> Iterator[tuple[str, int, int, str, int]]:
    """(split, document, segment, text, tokens to skip) of every segment not yet in a finished shard."""
    for document, (split, doc) in enumerate(docs):
        first_doc, first_segment, skip = resume[split]
        if document < first_doc:
            continue  # written by an earlier run: read past it, never encoded
        texts = segments(doc.pieces()) if splittable else ["".join(doc.pieces())]
        for segment, text in enumerate(_at_least_one(texts)):
            if (document, segment) >= (first_doc, first_segment):
                yield split, document, segment, text, skip if (document, segment) == (first_doc, first_segment) else 0


def _at_least_one(texts: Iterable[str]) -> Iterator[str]:
    """An empty document is one empty segment: it still gets its end-of-text token."""
    empty = True
    for text in texts:
        empty = False
        yield text
    if empty:
        yield ""


def _batches(texts: Iterable[tuple[str, int, int, str, int]], batch_chars: int) -> Iterator[Batch]:
    filling: dict[str, Batch] = {}
    for split, document, segment, text, skip in texts:
        batch = filling.get(split)
        if batch is None:  # skip is only ever non-zero for a split's first segment, which starts a batch
            batch = filling[split] = Batch(split, skip)
        batch.texts.append(text)
        batch.places.append((document, segment))
        batch.chars += len(text)
        if batch.chars >= batch_chars:
            yield filling.pop(split)
    yield from filling.values()


def ordered_map(fn: Callable, items: Iterable, workers: int) -> Iterator[tuple]:
    """(item, fn(item)) in the order of ``items``, computed by ``workers`` threads, a few items ahead."""
    with ThreadPoolExecutor(workers, thread_name_prefix="gptkit-encode") as pool:
        pending: deque = deque()
        for item in items:
            pending.append((item, pool.submit(fn, item)))
            if len(pending) > 2 * workers:
                item, future = pending.popleft()
                yield item, future.result()
        while pending:
            item, future = pending.popleft()
            yield item, future.result()


def read_meta(data_dir: str | Path) -> dict:
    path = Path(data_dir) / META_NAME
    if not path.is_file():
        raise GptkitError(f"{data_dir} is not a prepared data directory (no {META_NAME}); run 'gptkit prepare' first")
    meta = read_json(path, fix="run 'gptkit prepare' again")
    if not isinstance(meta.get("splits"), dict) or "vocab_size" not in meta:
        raise GptkitError(f"{path} is corrupt (not a gptkit meta.json); run 'gptkit prepare' again")
    if meta.get("version", 1) > META_VERSION:
        raise GptkitError(f"{path} was written by a newer gptkit (version {meta['version']}); upgrade gptkit")
    for info in meta["splits"].values():  # version 1 listed shard names only
        info["shards"] = [{"name": s} if isinstance(s, str) else s for s in info["shards"]]
    return meta


def check_settings(workers: int, shard_tokens: int, val_fraction: float = 0.0, part: str = "1/1") -> None:
    """Every setting in range before any work is done (or an earlier output touched)."""
    if workers < 1:
        raise GptkitError(f"--workers must be at least 1, got {workers}")
    if shard_tokens < 1:
        raise GptkitError(f"--shard-tokens must be at least 1, got {shard_tokens}; the default is 100,000,000")
    check_val_fraction(val_fraction)
    parse_part(part)


def prepare(
    docs: Iterable[tuple[str, Document | TextFile]],
    tokenizer: Tokenizer,
    out_dir: str | Path,
    workers: int = 1,
    shard_tokens: int = 100_000_000,
    total_bytes: int | None = None,
    progress: bool = True,
    resume: str | None = None,
) -> dict:
    """Tokenize (split, document) pairs into shards in ``out_dir``; returns the written meta.json.

    ``resume`` names the inputs and settings (None: always start afresh): an unfinished run into
    ``out_dir`` with the same name, shard size and tokenizer is continued.
    """
    check_settings(workers, shard_tokens)
    if tokenizer.eot_id is None:
        raise GptkitError(f"documents are joined by {EOT}, which this tokenizer lacks; add it with add_special_tokens")
    files = saved_files(tokenizer)
    encode, splittable = make_encoder(tokenizer, files)
    key = None if resume is None else hashlib.sha256(f"{resume}|{shard_tokens}|{tokenizer_digest(files)}".encode()).hexdigest()
    check_output(out_dir, "data")
    with owned(out_dir):  # one writer: a second prepare into it is refused, not interleaved
        output = Output(Path(out_dir), tokenizer.vocab_size, shard_tokens, key)
        done = sum(w.bytes for w in output.writers.values())
        bar = tqdm(total=total_bytes, initial=done, unit="B", unit_scale=True, desc="tokenizing", disable=not progress)
        try:
            batches = _batches(_texts(docs, output.resume_points(), splittable), BATCH_CHARS)
            for batch, encoded in ordered_map(partial(encode_batch, encode, tokenizer.eot_id), batches, workers):
                output.add(batch, encoded)
                bar.update(int(encoded.new_bytes.sum()))
                bar.set_postfix_str(_counts(output), refresh=False)
        except BaseException:
            output.abort()
            raise
        finally:
            bar.close()
        return output.finish(tokenizer, files)


def _counts(output: Output) -> str:
    writers = output.writers.values()
    return f"{sum(w.tokens for w in writers):,} tokens, {sum(w.documents for w in writers):,} documents"


def prepare_files(inputs: list[str], tokenizer: Tokenizer, out_dir: str | Path, val_fraction: float = 0.05,
                  seed: int = 0, text_field: str = "text", part: str = "1/1", workers: int = 1,
                  shard_tokens: int = 100_000_000, progress: bool = True) -> dict:
    """Prepare the documents of ``inputs`` (files, directories, globs), or part ``part`` ("I/N") of them.
    Run again with the same arguments after an interruption, it resumes."""
    check_settings(workers, shard_tokens, val_fraction, part)
    check_output(out_dir, "data", inputs)
    plan = plan_inputs(inputs, text_field, part)
    return prepare(plan.split(val_fraction, seed), tokenizer, out_dir, workers, shard_tokens, plan.size, progress,
                   resume=resume_key(plan, val_fraction, seed))


def prepare_shakespeare(data_dir: Path, tokenizer_spec: str, progress: bool = True) -> Path:
    """Shards of the bundled Shakespeare (three plays held out for validation), made once."""
    if (data_dir / META_NAME).is_file():
        return data_dir
    splits = shakespeare_splits()
    tokenizer = tokenizer_from_spec(tokenizer_spec, [d.text for docs in splits.values() for d in docs])
    docs = [(split, doc) for split, split_docs in splits.items() for doc in split_docs]
    prepare(docs, tokenizer, data_dir, total_bytes=sum(len(d.text) for _, d in docs), progress=progress)
    return data_dir


def summary(meta: dict, seconds: float) -> list[str]:
    """The end-of-run report: documents, tokens, bytes and tokens per byte of each split, and the time."""
    lines = []
    for split, info in meta["splits"].items():
        per_byte = info["tokens"] / info["bytes"] if info["bytes"] else 0.0
        lines.append(f"{split}: {info['documents']:,} documents, {info['tokens']:,} tokens, {info['bytes'] / 1e6:,.1f} MB "
                     f"of text ({per_byte:.3f} tokens/byte), {len(info['shards'])} shard(s)")
    total = sum(info["bytes"] for info in meta["splits"].values())
    lines.append(f"{total / 1e6:,.1f} MB in {seconds:,.1f} s ({total / 1e6 / max(seconds, 1e-9):,.1f} MB/s)")
    return lines

