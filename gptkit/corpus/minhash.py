"""MinHash signatures and LSH band keys of many documents at once.

A document's shingles are its word 5-grams (gptkit.corpus.text; a document of 1-4 words has one
shingle of all its words, an empty one none). Permutation p maps a shingle's 64-bit hash x to the
top 32 bits of ``a_p * x + b_p`` (mod 2**64, a_p odd: Dietzfelbinger's multiply-shift family) and the
signature keeps each permutation's minimum over the document's shingles; two documents agree on a
permutation with probability equal to the Jaccard similarity of their shingle sets. The ``bands x
rows`` values are cut into ``bands`` bands of ``rows``, each hashed to one 64-bit key: documents that
share a key in any band are candidate near duplicates, with probability ``1 - (1 - J**rows)**bands``.

This is the computation datasketch's ``MinHash.update_batch`` does for one document, here done for a
batch of thousands with a handful of numpy passes per permutation (see docs/data.md for why not
datasketch itself, and the measured ratio).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gptkit.corpus.text import _GOLDEN, clean_bytes, mix, ngram_hashes, word_hashes

EMPTY = np.uint32(0xFFFFFFFF)


@dataclass(frozen=True)
class LSH:
    bands: int = 20
    rows: int = 5
    ngram: int = 5
    seed: int = 0

    @property
    def permutations(self) -> int:
        return self.bands * self.rows

    def parameters(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, 0x6D696E68])
        a = rng.integers(0, 2**63, size=self.permutations, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        b = rng.integers(0, 2**63, size=self.permutations, dtype=np.uint64) * np.uint64(2)
        return a, b

    def candidate_probability(self, jaccard: float) -> float:
        return 1 - (1 - jaccard ** self.rows) ** self.bands


def shingles(texts: list[str], ngram: int, cleaned: list[bytes] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(the shingle hashes of all ``texts``, in order; how many each text has). ``cleaned``: the
    texts' ``clean_bytes``, if the caller has them."""
    hashes, counts = word_hashes(cleaned if cleaned is not None else [clean_bytes(t) for t in texts])
    return ngram_hashes(hashes, counts, ngram, short=True)


def signatures(shingle_hashes: np.ndarray, per_doc: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(documents, permutations) uint32 minima; a document without shingles gets EMPTY everywhere."""
    n, perms = len(per_doc), len(a)
    out = np.full((n, perms), EMPTY, dtype=np.uint32)
    has = per_doc > 0
    if not has.any():
        return out
    starts = np.concatenate(([0], np.cumsum(per_doc)[:-1]))[has]
    value = np.empty(len(shingle_hashes), dtype=np.uint64)
    shift = np.uint64(32)
    rows = np.flatnonzero(has)
    with np.errstate(over="ignore"):
        for p in range(perms):
            np.multiply(shingle_hashes, a[p], out=value)
            np.add(value, b[p], out=value)
            np.right_shift(value, shift, out=value)
            out[rows, p] = np.minimum.reduceat(value, starts)
    return out


def band_keys(signature: np.ndarray, lsh: LSH) -> np.ndarray:
    """(bands, documents) uint64: each band's ``rows`` values hashed to one key."""
    keys = np.empty((lsh.bands, len(signature)), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(lsh.bands):
            key = np.full(len(signature), np.uint64(band + 1) * _GOLDEN, dtype=np.uint64)
            for row in range(lsh.rows):
                key = mix(key * _GOLDEN + signature[:, band * lsh.rows + row].astype(np.uint64))
            keys[band] = key
    return keys
