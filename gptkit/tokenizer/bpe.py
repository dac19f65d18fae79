"""Byte-level BPE (GPT-2's scheme, or a vocabulary trained on your files) on Hugging Face tokenizers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from tokenizers import AddedToken, decoders, models, pre_tokenizers, trainers
from tokenizers import Tokenizer as Backend

from gptkit.errors import GptkitError
from gptkit.tokenizer.base import EOT, Tokenizer

# SHA-256 of OpenAI's released GPT-2 files (the digests tiktoken checks too).
GPT2_DIGESTS = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}


def _byte_level_backend(model: models.BPE) -> Backend:
    backend = Backend(model)
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    return backend


class ByteLevelBPETokenizer(Tokenizer):
    kind = "bytelevel-bpe"

    def __init__(self, backend: Backend):
        self._backend = backend
        self._ordinary: Backend | None = None  # same vocabulary, special tokens read as plain text
        if backend.token_to_id(EOT) is None:
            raise GptkitError(f"a byte-level BPE vocabulary must contain {EOT}")
        backend.add_special_tokens([AddedToken(EOT, special=True, normalized=False)])

    @classmethod
    def from_files(cls, vocab_json: str | Path, merges_txt: str | Path) -> ByteLevelBPETokenizer:
        return cls(_byte_level_backend(models.BPE.from_file(str(vocab_json), str(merges_txt))))

    @classmethod
    def gpt2(cls) -> ByteLevelBPETokenizer:
        assets = resources.files("gptkit.tokenizer") / "assets"
        with resources.as_file(assets) as folder:
            for name, digest in GPT2_DIGESTS.items():
                if hashlib.sha256((folder / name).read_bytes()).hexdigest() != digest:
                    raise GptkitError(f"the packaged GPT-2 file {name} is corrupt; reinstall gptkit")
            return cls.from_files(folder / "encoder.json", folder / "vocab.bpe")

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> ByteLevelBPETokenizer:
        if vocab_size < 257:
            raise GptkitError(f"--vocab-size must be at least 257 (256 bytes + {EOT}), got {vocab_size}")
        backend = _byte_level_backend(models.BPE())
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[EOT],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=True,
        )
        backend.train_from_iterator(texts, trainer=trainer)
        return cls(backend)

    @property
    def vocab_size(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    @property
    def special_tokens(self) -> dict[str, int]:
        return {t.content: i for i, t in self._backend.get_added_tokens_decoder().items() if t.special}

    def _ordinary_backend(self) -> Backend:
        if self._ordinary is None:
            self._ordinary = Backend.from_str(self._backend.to_str())
            self._ordinary.encode_special_tokens = True
        return self._ordinary

    def encode(self, text: str, allow_special: bool = True) -> list[int]:
        backend = self._backend if allow_special else self._ordinary_backend()
        return backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str], allow_special: bool = True) -> list[list[int]]:
        backend = self._backend if allow_special else self._ordinary_backend()
        return [e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return self._backend.decode(list(ids), skip_special_tokens=False)

    def add_special_tokens(self, tokens: list[str]) -> list[int]:
        self._backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in tokens])
        self._ordinary = None
        return [self._backend.token_to_id(t) for t in tokens]

    def _save_files(self, directory: Path) -> None:
        # vocab.json + merges.txt is the layout GPT-2 checkpoints use everywhere.
        self._backend.model.save(str(directory))
        self._backend.save(str(directory / "tokenizer.json"))

    def _hf_config(self) -> dict:
        return {"tokenizer_class": "GPT2Tokenizer", "bos_token": EOT, "unk_token": EOT, "add_prefix_space": False}

    @classmethod
    def _load_files(cls, directory: Path, config: dict) -> ByteLevelBPETokenizer:
        vocab, merges = directory / "vocab.json", directory / "merges.txt"
        for f in (vocab, merges):
            if not f.is_file():
                raise GptkitError(f"tokenizer file {f} is missing")
        try:
            tok = cls.from_files(vocab, merges)
        except Exception as e:  # the Rust backend raises plain Exception on bad files
            raise GptkitError(f"cannot read the BPE files in {directory}: {e}") from None
        extra = sorted(((i, t) for t, i in config.get("special_tokens", {}).items() if t != EOT))
        if extra:
            ids = tok.add_special_tokens([t for _, t in extra])
            if ids != [i for i, _ in extra]:
                raise GptkitError(f"{directory}: special token ids {ids} differ from the saved ones")
        return tok

