"""The part every BPE tokenizer shares: a Hugging Face `tokenizers` pipeline doing the work."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from tokenizers import AddedToken
from tokenizers import Tokenizer as Backend

from gptkit.errors import GptkitError
from gptkit.io import atomic_path
from gptkit.tokenizer.base import Tokenizer


class BackendTokenizer(Tokenizer):
    """Subclasses say how to build the pipeline from vocab.json + merges.txt (``from_files``)."""

    def __init__(self, backend: Backend):
        self._backend = backend
        self._ordinary: Backend | None = None  # same vocabulary, special tokens read as plain text

    @classmethod
    def from_files(cls, vocab_json: str | Path, merges_txt: str | Path) -> BackendTokenizer:
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    @property
    def special_tokens(self) -> dict[str, int]:
        return {t.content: i for i, t in self._backend.get_added_tokens_decoder().items() if t.special}

    def _pipeline(self, allow_special: bool) -> Backend:
        if allow_special:
            return self._backend
        if self._ordinary is None:
            self._ordinary = Backend.from_str(self._backend.to_str())
            self._ordinary.encode_special_tokens = True
        return self._ordinary

    def encode(self, text: str, allow_special: bool = True) -> list[int]:
        return self._pipeline(allow_special).encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str], allow_special: bool = True) -> list[list[int]]:
        return [e.ids for e in self._pipeline(allow_special).encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return self._backend.decode(list(ids), skip_special_tokens=False)

    def add_special_tokens(self, tokens: list[str]) -> list[int]:
        self._backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in tokens])
        self._ordinary = None
        return [self._backend.token_to_id(t) for t in tokens]

    def _save_files(self, directory: Path) -> None:
        """vocab.json + merges.txt (the layout published checkpoints use everywhere) and tokenizer.json,
        written aside by the backend, then each renamed into place as every gptkit file is."""
        with tempfile.TemporaryDirectory(prefix=".tokenizer-", dir=directory) as staging:
            try:
                files = [*self._backend.model.save(staging), str(Path(staging) / "tokenizer.json")]
                self._backend.save(files[-1])
            except Exception as e:  # the Rust backend raises plain Exception, a full disk among them
                raise GptkitError(f"cannot write the tokenizer to {directory}: {e}") from None
            for file in files:
                with atomic_path(directory / Path(file).name) as tmp:
                    os.replace(file, tmp)

    @classmethod
    def from_directory(cls, directory: Path) -> BackendTokenizer:
        """The vocab.json + merges.txt of a directory, as published checkpoints lay them out."""
        vocab, merges = directory / "vocab.json", directory / "merges.txt"
        for f in (vocab, merges):
            if not f.is_file():
                raise GptkitError(f"tokenizer file {f} is missing")
        try:
            return cls.from_files(vocab, merges)
        except Exception as e:  # the Rust backend raises plain Exception on bad files
            raise GptkitError(f"cannot read the BPE files in {directory}: {str(e).splitlines()[0]}") from None

    @classmethod
    def _load_files(cls, directory: Path, config: dict) -> BackendTokenizer:
        tok = cls.from_directory(directory)
        known = tok.special_tokens
        saved = config.get("special_tokens", {})
        if not isinstance(saved, dict) or not all(isinstance(i, int) for i in saved.values()):
            raise GptkitError(f"{directory / 'tokenizer_config.json'}: special_tokens must map token text to an id")
        extra = sorted((i, t) for t, i in saved.items() if t not in known)
        if extra:
            ids = tok.add_special_tokens([t for _, t in extra])
            if ids != [i for i, _ in extra]:
                raise GptkitError(f"{directory}: special token ids {ids} differ from the saved ones")
        return tok
