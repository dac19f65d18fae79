"""Text in, token shards out, random windows back: the data path of training.

The loader's names (which need PyTorch) are imported on first use, so `gptkit prepare` and
`gptkit tokenizer train`, which never read windows, start without loading PyTorch at all."""

import importlib

from gptkit.data.documents import Document, TextFile, shakespeare, shakespeare_splits
from gptkit.data.plan import Plan, plan_inputs
from gptkit.data.prepare import prepare, prepare_files, prepare_shakespeare, read_meta, summary
from gptkit.data.shards import open_shard, read_header, write_shard
from gptkit.data.vocab import corpus_characters, iter_texts, train_tokenizer

LOADER = ("Corpus", "MixtureLoader", "WindowLoader", "unigram_entropy")

__all__ = [
    "Corpus", "Document", "MixtureLoader", "Plan", "TextFile", "WindowLoader", "corpus_characters", "iter_texts", "open_shard",
    "plan_inputs", "prepare", "prepare_files", "prepare_shakespeare", "read_header", "read_meta", "shakespeare",
    "shakespeare_splits", "summary", "train_tokenizer", "unigram_entropy", "write_shard",
]


def __getattr__(name: str):
    if name in LOADER:
        return getattr(importlib.import_module("gptkit.data.loader"), name)
    raise AttributeError(f"module 'gptkit.data' has no attribute {name!r}")
