"""Tokenizers behind one interface: GPT-2 byte-level BPE, trained byte-level BPE, characters."""

from gptkit.tokenizer.base import EOT, Tokenizer
from gptkit.tokenizer.bpe import ByteLevelBPETokenizer
from gptkit.tokenizer.char import CharTokenizer

__all__ = ["EOT", "ByteLevelBPETokenizer", "CharTokenizer", "Tokenizer"]
