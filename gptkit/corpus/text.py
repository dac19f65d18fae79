"""Words, and 64-bit hashes of words and word n-grams, computed for many documents at once in numpy.

Every step of `gptkit corpus` sees a document's text the same way, as GPT-3's decontamination did:
lowercased, with punctuation (any character that is not a letter, a digit or whitespace) removed,
split on whitespace. ``clean`` gives that form; ``word_hashes`` hashes the words of a batch of
cleaned documents in a few vectorized passes (no Python loop over words), and ``ngram_hashes``
combines runs of n consecutive words of the same document into one 64-bit hash.

The hashes are fixed functions of the text (no per-process salt), so every process on every
machine computes the same ones. A word's hash is a sum of its bytes times random 64-bit constants
(one per position in the word) mixed by SplitMix64's finalizer: two different words collide with
probability about 2**-64.
"""

from __future__ import annotations

import re

import numpy as np

_PUNCTUATION = re.compile(r"[^\w\s]|_")
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)
_SPACE = 32
_POSITIONS = 64  # positions in a word with their own constant; longer words reuse them (still deterministic)
_CONSTANTS = np.random.default_rng(0x67707400).integers(1, 2**63, size=_POSITIONS, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_C1, _C2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


# For ASCII text the same in bytes, several times faster: lowercase, delete every byte that is not a
# letter, digit or whitespace, and make \x1c-\x1f (whitespace to str.split) spaces.
_ASCII_SPACE = b" \t\n\r\x0b\x0c"
_LOWER = bytes(range(256)).lower().translate(bytes.maketrans(b"\x1c\x1d\x1e\x1f", b"    "))
_DELETE = bytes(c for c in range(128) if not (chr(c).isalnum() or chr(c).isspace()))


def clean(text: str) -> str:
    """``text`` lowercased, punctuation removed, words separated by single spaces."""
    return clean_bytes(text).decode("utf-8")


def clean_bytes(text: str) -> bytes:
    """``clean(text)`` as UTF-8."""
    if text.isascii():
        return b" ".join(text.encode("ascii").translate(_LOWER, _DELETE).split())
    return " ".join(_PUNCTUATION.sub("", text.lower()).split()).encode("utf-8")


def words(text: str) -> list[str]:
    return clean(text).split()


def mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer, elementwise on uint64 (wrapping arithmetic): every output bit depends on every input bit."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * _C1
        x = x ^ (x >> np.uint64(27))
        x = x * _C2
        return x ^ (x >> np.uint64(31))


def word_hashes(cleaned: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """(hash of every word of the ``cleaned`` documents (``clean_bytes``) in order, uint64; number of
    words of each document)."""
    counts = np.fromiter((s.count(b" ") + 1 if s else 0 for s in cleaned), dtype=np.int64, count=len(cleaned))
    joined = b" ".join(s for s in cleaned if s)
    if not joined:
        return np.zeros(0, dtype=np.uint64), counts
    # every word followed by exactly one space: a word is the bytes from its start to the next start
    b = np.frombuffer(joined + b" ", dtype=np.uint8)
    starts = _starts(b)
    spans = np.diff(np.append(starts, len(b)))  # word and its space
    # each byte's position in its word, in 4 bytes a byte (a batch is far below 2 GiB)
    position = np.arange(len(b), dtype=np.int32)
    position -= np.repeat(starts.astype(np.int32), spans)
    position &= _POSITIONS - 1
    terms = _CONSTANTS[position]
    del position
    with np.errstate(over="ignore"):
        np.multiply(terms, b, out=terms)
        sums = np.add.reduceat(terms, starts)
        return mix(sums ^ ((spans - 1).astype(np.uint64) * _GOLDEN)), counts


def _starts(b: np.ndarray) -> np.ndarray:
    """Where the words of ``b`` (single spaces between them, one at the end) start."""
    after_space = np.flatnonzero(b[:-1] == _SPACE) + 1
    return np.concatenate(([0], after_space))


def ngram_hashes(hashes: np.ndarray, counts: np.ndarray, n: int, short: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(hash of every run of ``n`` consecutive words inside one document, in order; the number of
    such runs per document). With ``short``, a document of 1 to n-1 words gives one hash of all its
    words (so it still has a shingle); with it off it gives none."""
    total = len(hashes)
    doc_starts = np.concatenate(([0], np.cumsum(counts)[:-1])) if len(counts) else np.zeros(0, dtype=np.int64)
    if total < n:
        full = np.zeros(0, dtype=np.uint64)
        valid_starts = np.zeros(0, dtype=np.int64)
    else:
        with np.errstate(over="ignore"):
            full = np.zeros(total - n + 1, dtype=np.uint64)
            for k in range(n):
                full = mix(full * _GOLDEN + hashes[k: total - n + 1 + k] + np.uint64(k + 1))
        # a run starting at word i is inside its document when i + n <= its document's end
        doc_of_word = np.repeat(np.arange(len(counts)), counts)
        ends = (doc_starts + counts)[doc_of_word[: total - n + 1]]
        keep = np.arange(total - n + 1) + n <= ends
        full, valid_starts = full[keep], np.flatnonzero(keep)
    per_doc = np.maximum(counts - n + 1, 0)
    if not short or not np.any((counts > 0) & (counts < n)):
        return full, per_doc
    # documents shorter than n words: one hash of all their words, spliced in at their place
    out, pieces, taken = [], [], 0
    for d in np.flatnonzero((counts > 0) & (counts < n)):
        before = int(np.searchsorted(valid_starts, doc_starts[d]))
        pieces.append(full[taken:before])
        h = np.zeros(1, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for k in range(int(counts[d])):
                h = mix(h * _GOLDEN + hashes[doc_starts[d] + k: doc_starts[d] + k + 1] + np.uint64(k + 1))
        pieces.append(h)
        taken = before
        out.append(d)
    pieces.append(full[taken:])
    per_doc = per_doc.copy()
    per_doc[out] = 1
    return np.concatenate(pieces), per_doc
