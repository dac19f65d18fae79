"""Text in, token shards out, random windows back: the data path of training."""

from gptkit.data.documents import Document, shakespeare, shakespeare_splits
from gptkit.data.loader import WindowLoader, read_meta, unigram_entropy
from gptkit.data.prepare import prepare, prepare_files
from gptkit.data.shards import open_shard, read_header, write_shard

__all__ = [
    "Document", "WindowLoader", "open_shard", "prepare", "prepare_files", "read_header", "read_meta",
    "shakespeare", "shakespeare_splits", "unigram_entropy", "write_shard",
]
