"""A character-level vocabulary: one token per character (tiny experiments, Chinese chit-chat)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as Backend

from gptkit.errors import GptkitError
from gptkit.io import read_json, write_text
from gptkit.tokenizer.base import EOT, Tokenizer

UNK = "<|unk|>"
EVERY_CHARACTER = Regex(r"[\s\S]")  # one match per code point, line breaks included


class CharTokenizer(Tokenizer):
    """Ids 0.. are the special tokens (end-of-text, unknown, ...), then the characters in sorted order."""

    kind = "char"

    def __init__(self, tokens: list[str]):
        if tokens[:2] != [EOT, UNK]:
            raise GptkitError(f"a character vocabulary must start with {EOT} and {UNK}")
        self._index(list(tokens))

    def _index(self, tokens: list[str]) -> None:
        self.itos = tokens
        self.stoi = {t: i for i, t in enumerate(tokens)}
        self._specials = [t for t in tokens if len(t) > 1]
        chars = [(ord(t), i) for i, t in enumerate(tokens) if len(t) == 1]
        chars.sort()
        self._codepoints = np.array([c for c, _ in chars], dtype=np.uint32)
        self._ids = np.array([i for _, i in chars], dtype=np.int64)
        # Longest first: where special tokens overlap, the longest wins, as in Hugging Face tokenizers.
        longest_first = sorted(self._specials, key=len, reverse=True)
        self._special_re = re.compile("(" + "|".join(map(re.escape, longest_first)) + ")")

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        # Every character, those of a "<|endoftext|>" spelled in the text included: prepare encodes
        # documents with allow_special=False, so the text must encode without unknowns that way too.
        return cls([EOT, UNK, *sorted(set(text))])

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    @property
    def unk_id(self) -> int:
        return self.stoi[UNK]

    @property
    def special_tokens(self) -> dict[str, int]:
        return {t: self.stoi[t] for t in self._specials}

    def _encode_chars(self, text: str) -> np.ndarray:
        if not text:
            return np.zeros(0, dtype=np.int64)
        cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        if not len(self._codepoints):  # a vocabulary of special tokens only: every character is unknown
            return np.full(len(cps), self.stoi[UNK], dtype=np.int64)
        pos = np.searchsorted(self._codepoints, cps).clip(max=len(self._codepoints) - 1)
        found = self._codepoints[pos] == cps
        return np.where(found, self._ids[pos], self.stoi[UNK])

    def encode(self, text: str, allow_special: bool = True) -> list[int]:
        if not allow_special:
            return self._encode_chars(text).tolist()
        ids: list[int] = []
        for piece in self._special_re.split(text):
            if piece in self.stoi and len(piece) > 1:
                ids.append(self.stoi[piece])
            else:
                ids.extend(self._encode_chars(piece).tolist())
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.itos[i] for i in ids)

    def add_special_tokens(self, tokens: list[str]) -> list[int]:
        new = [t for t in tokens if t not in self.stoi]
        self._index(self.itos + new)
        return [self.stoi[t] for t in tokens]

    def hf_backend(self) -> Backend:
        """The same text <-> ids mapping as a Hugging Face `tokenizers` pipeline, so that transformers
        (PreTrainedTokenizerFast) reads the vocabulary from tokenizer.json."""
        backend = Backend(models.WordLevel(self.stoi, unk_token=UNK))
        backend.pre_tokenizer = pre_tokenizers.Split(EVERY_CHARACTER, behavior="isolated")
        backend.decoder = decoders.Fuse()
        backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in self._specials])
        return backend

    def _save_files(self, directory: Path) -> None:
        # vocab.json is what gptkit reads; tokenizer.json is the same vocabulary for transformers.
        write_text(directory / "vocab.json", json.dumps(self.stoi, ensure_ascii=False, indent=0) + "\n")
        write_text(directory / "tokenizer.json", self.hf_backend().to_str(pretty=True) + "\n")

    def _hf_config(self) -> dict:
        return {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": EOT, "unk_token": UNK,
                "clean_up_tokenization_spaces": False}

    @classmethod
    def _load_files(cls, directory: Path, config: dict) -> CharTokenizer:
        path = directory / "vocab.json"
        if not path.is_file():
            raise GptkitError(f"tokenizer file {path} is missing")
        stoi = read_json(path, fix="the character vocabulary is damaged; save the tokenizer again")
        tokens = sorted(stoi, key=lambda t: stoi[t] if isinstance(stoi[t], int) else -1)
        if [stoi[t] for t in tokens] != list(range(len(tokens))):
            raise GptkitError(f"{path}: token ids must be 0..{len(tokens) - 1} without gaps")
        return cls(tokens)
