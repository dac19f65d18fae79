"""GPT-1's tokenizer ("openai-gpt"): lower-cased, BERT-style text clean-up and punctuation splitting,
then BPE whose word-final pieces end in ``</w>``. Built on Hugging Face tokenizers with the same
pipeline the `transformers` reference uses, so the ids are the same."""

from __future__ import annotations

from pathlib import Path

from tokenizers import AddedToken, decoders, models, normalizers, pre_tokenizers
from tokenizers import Tokenizer as Backend

from gptkit.tokenizer.backend import BackendTokenizer
from gptkit.tokenizer.base import EOT

UNK = "<unk>"


class GPT1BPETokenizer(BackendTokenizer):
    kind = "gpt1-bpe"

    @classmethod
    def from_files(cls, vocab_json: str | Path, merges_txt: str | Path) -> GPT1BPETokenizer:
        model = models.BPE.from_file(str(vocab_json), str(merges_txt), unk_token=UNK, end_of_word_suffix="</w>",
                                     fuse_unk=False)
        backend = Backend(model)
        if backend.token_to_id(UNK) is not None:
            backend.add_special_tokens([AddedToken(UNK, special=True)])
        backend.normalizer = normalizers.BertNormalizer(lowercase=True)  # clean-up, accents, CJK, lower case
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()  # split on whitespace and punctuation
        backend.decoder = decoders.BPEDecoder(suffix="</w>")
        return cls(backend)

    @property
    def unk_id(self) -> int | None:
        return self._backend.token_to_id(UNK)

    def _hf_config(self) -> dict:
        # GPT-1 has no end-of-text token unless one was added: naming one anyway would make transformers add it.
        return {"tokenizer_class": "OpenAIGPTTokenizer", "unk_token": UNK, "eos_token": EOT if self.eot_id is not None else None}
