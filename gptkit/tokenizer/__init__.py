"""Tokenizers behind one interface: GPT-2 / trained byte-level BPE, GPT-1 BPE, characters, BERT WordPiece."""

from gptkit.tokenizer.base import EOT, Tokenizer
from gptkit.tokenizer.bpe import ByteLevelBPETokenizer
from gptkit.tokenizer.char import CharTokenizer
from gptkit.tokenizer.gpt1 import GPT1BPETokenizer
from gptkit.tokenizer.wordpiece import WordPieceTokenizer

__all__ = ["EOT", "ByteLevelBPETokenizer", "CharTokenizer", "GPT1BPETokenizer", "Tokenizer", "WordPieceTokenizer"]
