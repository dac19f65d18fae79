"""Byte-level BPE (GPT-2's scheme, or a vocabulary trained on your files) on Hugging Face tokenizers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from tokenizers import AddedToken, decoders, models, pre_tokenizers, trainers
from tokenizers import Tokenizer as Backend

from gptkit.errors import GptkitError
from gptkit.tokenizer.backend import BackendTokenizer
from gptkit.tokenizer.base import EOT

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


class ByteLevelBPETokenizer(BackendTokenizer):
    kind = "bytelevel-bpe"

    def __init__(self, backend: Backend):
        super().__init__(backend)
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

    def _hf_config(self) -> dict:
        return {"tokenizer_class": "GPT2Tokenizer", "bos_token": EOT, "unk_token": EOT, "add_prefix_space": False}
