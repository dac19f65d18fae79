"""Text in, token shards out, random windows back: the data path of training."""

from gptkit.data.documents import Document, TextFile, shakespeare, shakespeare_splits
from gptkit.data.loader import Corpus, WindowLoader, read_meta, unigram_entropy
from gptkit.data.plan import Plan, plan_inputs
from gptkit.data.prepare import prepare, prepare_files, summary
from gptkit.data.shards import open_shard, read_header, write_shard
from gptkit.data.vocab import corpus_characters, iter_texts, train_tokenizer

__all__ = [
    "Corpus", "Document", "Plan", "TextFile", "WindowLoader", "corpus_characters", "iter_texts", "open_shard",
    "plan_inputs", "prepare", "prepare_files", "read_header", "read_meta", "shakespeare", "shakespeare_splits",
    "summary", "train_tokenizer", "unigram_entropy", "write_shard",
]
