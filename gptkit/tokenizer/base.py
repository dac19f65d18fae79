"""The one tokenizer interface every backend implements, and loading by kind from a directory."""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from gptkit.errors import GptkitError
from gptkit.io import read_json, write_text

EOT = "<|endoftext|>"
CONFIG_NAME = "tokenizer_config.json"
log = logging.getLogger("gptkit")


def unknown_note(characters: list[str]) -> str:
    """The one wording of "these characters will read as unknown": the log, the chat, the server and its page."""
    shown = " ".join(characters[:20]) + (f" and {len(characters) - 20} more" if len(characters) > 20 else "")
    return f"not in this model's vocabulary (read as unknown): {shown}"


class Tokenizer(ABC):
    """encode/decode between text and token ids, plus the end-of-text token and other specials."""

    kind: ClassVar[str]
    # How chat messages become this model's prompt, as a Jinja template over ``messages`` (saved in
    # tokenizer_config.json, where transformers' apply_chat_template reads it); None: no chat format.
    chat_template: str | None = None
    # Every backend, by kind; gptkit.tokenizer imports them all, so base never imports a subclass.
    registry: ClassVar[dict[str, type[Tokenizer]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if getattr(cls, "kind", None):
            Tokenizer.registry[cls.kind] = cls

    @property
    @abstractmethod
    def vocab_size(self) -> int: ...

    @property
    @abstractmethod
    def special_tokens(self) -> dict[str, int]:
        """Special token text -> id (always includes the end-of-text token)."""

    @property
    def eot_id(self) -> int | None:
        """The end-of-text id; None for vocabularies that have none (GPT-1's)."""
        return self.special_tokens.get(EOT)

    @property
    def unk_id(self) -> int | None:
        """The id text outside the vocabulary becomes; None where every text encodes (byte-level BPE)."""
        return None

    def unknown_characters(self, text: str) -> list[str]:
        """The characters of ``text`` this vocabulary cannot represent (they would read as unknown)."""
        if self.unk_id is None:
            return []
        return sorted(c for c in set(text) if not c.isspace() and self.unk_id in self.encode(c, allow_special=False))

    def new_unknown(self, text: str, reported: set[str]) -> list[str]:
        """The characters of ``text`` this vocabulary cannot represent that ``reported`` lacks, now
        added to it: each is told about once across the calls that share ``reported``."""
        new = [c for c in self.unknown_characters(text) if c not in reported]
        reported.update(new)
        return new

    def warn_unknown(self, text: str, reported: set[str] | None = None) -> None:
        """Say (once per character, across calls sharing ``reported``) which characters of ``text``
        the model cannot read: typed to it, they would silently become the unknown token."""
        new = self.new_unknown(text, set() if reported is None else reported)
        if new:
            log.warning("%s", unknown_note(new))

    @abstractmethod
    def encode(self, text: str, allow_special: bool = True) -> list[int]:
        """Token ids of ``text``. With ``allow_special=False`` "<|endoftext|>" is encoded as plain text."""

    def encode_batch(self, texts: list[str], allow_special: bool = True) -> list[list[int]]:
        return [self.encode(t, allow_special) for t in texts]

    @abstractmethod
    def decode(self, ids: Iterable[int]) -> str: ...

    @abstractmethod
    def add_special_tokens(self, tokens: list[str]) -> list[int]:
        """Add new special tokens (e.g. GPT-1's start/delimiter/extract) at the end of the vocabulary."""

    @abstractmethod
    def _save_files(self, directory: Path) -> None: ...

    @classmethod
    @abstractmethod
    def _load_files(cls, directory: Path, config: dict) -> Tokenizer: ...

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._save_files(directory)
        config = {"gptkit_tokenizer": self.kind, "eos_token": EOT, "special_tokens": self.special_tokens,
                  **self._hf_config()}
        if self.chat_template is not None:
            config["chat_template"] = self.chat_template
        write_text(directory / CONFIG_NAME, json.dumps(config, indent=2, ensure_ascii=False) + "\n")

    def _hf_config(self) -> dict:
        """Extra tokenizer_config.json keys that let other libraries read the same directory."""
        return {}

    @staticmethod
    def load(directory: str | Path) -> Tokenizer:
        """A tokenizer gptkit saved (its tokenizer_config.json names the kind). Model directories of
        any layout, Hugging Face's included, are read by ``gptkit.checkpoint.load_tokenizer``."""
        path = Path(directory) / CONFIG_NAME
        if not path.is_file():
            raise GptkitError(f"no tokenizer in {directory} ({CONFIG_NAME} is missing)")
        config = read_json(path, fix="save the tokenizer again", expect=object)
        kind = config.get("gptkit_tokenizer") if isinstance(config, dict) else None
        if kind not in Tokenizer.registry:
            raise GptkitError(f"{path}: unknown tokenizer kind {kind!r}; known: {', '.join(Tokenizer.registry)}")
        tokenizer = Tokenizer.registry[kind]._load_files(Path(directory), config)
        if isinstance(config.get("chat_template"), str):
            tokenizer.chat_template = config["chat_template"]
        return tokenizer

    @staticmethod
    def gpt2() -> Tokenizer:
        """GPT-2's byte-level BPE (50,257 tokens), from the original files shipped in the package."""
        return Tokenizer.registry["bytelevel-bpe"].gpt2()

    @staticmethod
    def char(text: str) -> Tokenizer:
        """A character vocabulary of every character in ``text`` (for tiny experiments, or Chinese)."""
        return Tokenizer.registry["char"].from_text(text)

    @staticmethod
    def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> Tokenizer:
        """A new byte-level BPE vocabulary of ``vocab_size`` tokens learned from ``texts``."""
        return Tokenizer.registry["bytelevel-bpe"].train(texts, vocab_size, min_frequency)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"
