"""Readers of prepared splits, shared by the data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gptkit.data import Corpus, open_shard
from gptkit.tokenizer import Tokenizer


def split_tokens(data_dir: str | Path, split: str) -> np.ndarray:
    """All tokens of ``split``, its shards concatenated in order."""
    shards = [np.asarray(open_shard(path)) for path, _ in Corpus(data_dir).shards(split)]
    return np.concatenate(shards).astype(np.int64) if shards else np.zeros(0, dtype=np.int64)


def split_documents(data_dir: str | Path, split: str, tok: Tokenizer) -> list[str]:
    """The documents of ``split``, each checked to start with the end-of-text token."""
    tokens = split_tokens(data_dir, split).tolist()
    if not tokens:
        return []
    assert tokens[0] == tok.eot_id, "every document must be preceded by the end-of-text token"
    docs, current = [], []
    for t in tokens[1:]:
        if t == tok.eot_id:
            docs.append(tok.decode(current))
            current = []
        else:
            current.append(t)
    docs.append(tok.decode(current))
    return docs
