"""Vocabularies learned from the user's files: a byte-level BPE, or the characters of a corpus;
and the tokenizer a --tokenizer flag names.

Both stream the text, so a corpus of any size trains a tokenizer in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path

from gptkit.data.documents import input_files, read_documents
from gptkit.data.segments import segments
from gptkit.errors import GptkitError
from gptkit.tokenizer import Tokenizer, WordPieceTokenizer

MIN_VOCAB = 257  # the 256 bytes and the end-of-text token
MAX_VOCAB = 2**24
MAX_MIN_FREQUENCY = 2**32 - 1


def iter_texts(inputs: list[str], text_field: str = "text") -> Iterator[str]:
    """The text of every document in ``inputs``, in segments (a long document never whole in memory)."""
    for path in input_files(inputs):
        for doc in read_documents(path, text_field):
            yield from segments(doc.pieces())


def _nonempty(texts: Iterator[str]) -> Iterator[str]:
    first = next((t for t in texts if t), None)
    if first is None:
        raise GptkitError("the corpus is empty: no text was found in the inputs")
    return chain([first], texts)


def train_tokenizer(inputs: list[str], vocab_size: int, min_frequency: int = 2, text_field: str = "text") -> Tokenizer:
    """A byte-level BPE of ``vocab_size`` tokens learned from the documents of ``inputs``."""
    if not MIN_VOCAB <= vocab_size <= MAX_VOCAB:
        raise GptkitError(f"--vocab-size must be between {MIN_VOCAB} (256 bytes + end-of-text) and {MAX_VOCAB:,}, got {vocab_size:,}")
    if not 0 <= min_frequency <= MAX_MIN_FREQUENCY:
        raise GptkitError(f"--min-frequency must be between 0 and {MAX_MIN_FREQUENCY:,} (pairs seen fewer times are not merged), "
                          f"got {min_frequency:,}")
    return Tokenizer.train_bpe(_nonempty(iter_texts(inputs, text_field)), vocab_size, min_frequency)


def corpus_characters(inputs: list[str], text_field: str = "text") -> str:
    """Every distinct character of ``inputs``, sorted: a character vocabulary for the whole corpus
    (the same for every ``--part``, so parts can be trained on together)."""
    chars: set[str] = set()
    for text in _nonempty(iter_texts(inputs, text_field)):
        chars.update(text)
    return "".join(sorted(chars))


def tokenizer_from_spec(spec: str, texts: Iterable[str] = ()) -> Tokenizer:
    """"char" (a vocabulary of the characters of ``texts``), "wordpiece" (a BERT-style WordPiece
    vocabulary learned from ``texts``), "gpt2", a BERT vocab.txt, or a directory holding a tokenizer
    (a tokenizer, model or run directory, read by gptkit.checkpoint)."""
    if spec == "char":
        return Tokenizer.char("".join(texts))
    if spec == "wordpiece":
        return WordPieceTokenizer.train(texts)
    if spec == "gpt2":
        return Tokenizer.gpt2()
    if Path(spec).expanduser().is_file() and Path(spec).name.endswith(".txt"):
        return WordPieceTokenizer.from_vocab(Path(spec).expanduser())
    if Path(spec).expanduser().is_dir():
        from gptkit.checkpoint import load_tokenizer  # a model or run directory: PyTorch's world

        return load_tokenizer(spec)
    raise GptkitError(f"unknown tokenizer {spec!r}: use char, wordpiece, gpt2, a BERT vocab.txt or a directory with "
                      "tokenizer files")
