"""GPT-1's tokenizer ("openai-gpt"): lower-cased, BERT-style text clean-up and punctuation splitting,
then BPE whose word-final pieces end in ``</w>``. Built on Hugging Face tokenizers with the same
pipeline the `transformers` reference uses, so the ids are the same."""

from __future__ import annotations

from pathlib import Path

from tokenizers import AddedToken, decoders, models, normalizers, pre_tokenizers
from tokenizers import Tokenizer as Backend

from gptkit.tokenizer.backend import BackendTokenizer

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

    def _hf_config(self) -> dict:
        return {"tokenizer_class": "OpenAIGPTTokenizer", "unk_token": UNK}
