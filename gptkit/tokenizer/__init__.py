"""Tokenizers behind one interface: GPT-2 / trained byte-level BPE, GPT-1 BPE, characters."""

from gptkit.tokenizer.base import EOT, Tokenizer
from gptkit.tokenizer.bpe import ByteLevelBPETokenizer
from gptkit.tokenizer.char import CharTokenizer
from gptkit.tokenizer.gpt1 import GPT1BPETokenizer

__all__ = ["EOT", "ByteLevelBPETokenizer", "CharTokenizer", "GPT1BPETokenizer", "Tokenizer"]
