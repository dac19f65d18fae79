"""BERT's WordPiece over a ``vocab.txt`` (one token per line, the line number its id): the vocabulary
Chinese chit-chat models such as GPT2-chitchat and CDial-GPT read, every Chinese character a token of
its own. The pipeline is Hugging Face `tokenizers`' BertWordPiece one (BERT's clean-up, lower case and
Chinese-character splitting, then WordPiece), so transformers' BertTokenizerFast gives the same ids.
[SEP] separates the turns of a dialogue (GPT2-chitchat's separator): it is this vocabulary's end-of-text."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from tokenizers import AddedToken, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers import Tokenizer as Backend

from gptkit.errors import GptkitError
from gptkit.tokenizer.backend import BackendTokenizer

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # BERT's, ids 0-4 of a vocabulary gptkit trains
UNK, SEP, PREFIX = "[UNK]", "[SEP]", "##"
DEFAULT_VOCAB = 8000
# Han characters, CJK punctuation and full-width forms (as a regex class): written without spaces
# between them, so decoding joins them without one.
CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
CJK_CHAR = re.compile(f"[{CJK}]")
CLOSING = set(".,!?;:%)]}")  # English punctuation that follows its word without a space


def _backend(model: models.WordPiece) -> Backend:
    """BertWordPieceTokenizer's pipeline (tokenizers.implementations), which BertTokenizerFast builds too."""
    backend = Backend(model)
    backend.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                                    lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix=PREFIX)
    specials = [t for t in SPECIALS if backend.token_to_id(t) is not None]
    backend.add_special_tokens([AddedToken(t, special=True) for t in specials])
    return backend


def join_pieces(tokens: list[str]) -> str:
    """WordPiece tokens -> text: ``##`` pieces continue their word, Chinese characters and closing
    punctuation follow without a space, other words are separated by one (BERT's decoder would put a
    space between every two Chinese characters)."""
    text = ""
    for token in tokens:
        if token.startswith(PREFIX) and len(token) > len(PREFIX):
            text += token[len(PREFIX):]
        elif text and not (CJK_CHAR.match(text[-1]) or CJK_CHAR.match(token[0]) or token[0] in CLOSING):
            text += " " + token
        else:
            text += token
    return text


class WordPieceTokenizer(BackendTokenizer):
    kind = "bert-wordpiece"

    def __init__(self, backend: Backend):
        super().__init__(backend)
        missing = [t for t in (UNK, SEP) if backend.token_to_id(t) is None]
        if missing:
            raise GptkitError(f"a BERT vocab.txt must contain {' and '.join(missing)} (the unknown token and the "
                              "separator between turns)")

    @classmethod
    def from_vocab(cls, vocab_txt: str | Path) -> WordPieceTokenizer:
        """A BERT-style vocab.txt, e.g. bert-base-chinese's, which GPT2-chitchat ships."""
        path = Path(vocab_txt)
        if not path.is_file():
            raise GptkitError(f"tokenizer file {path} is missing")
        try:
            vocab = models.WordPiece.read_file(str(path))
        except Exception as e:  # the Rust backend raises plain Exception on a bad file
            raise GptkitError(f"cannot read {path} as a vocab.txt (one token per line): {str(e).splitlines()[0]}") from None
        return cls(_backend(models.WordPiece(vocab, unk_token=UNK)))

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB, min_frequency: int = 1) -> WordPieceTokenizer:
        """A vocab.txt learned from ``texts``: BERT's five special tokens, every character seen (each
        Chinese character is a word of its own), then the most useful WordPiece pieces up to ``vocab_size``."""
        if vocab_size < len(SPECIALS) + 1:
            raise GptkitError(f"--vocab-size must be at least {len(SPECIALS) + 1}, got {vocab_size}")
        backend = _backend(models.WordPiece(unk_token=UNK))
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIALS,
                                            continuing_subword_prefix=PREFIX, show_progress=False)
        backend.train_from_iterator(texts, trainer=trainer)
        return cls(_backend(backend.model))

    @property
    def eot_id(self) -> int:
        return self._backend.token_to_id(SEP)

    @property
    def unk_id(self) -> int:
        return self._backend.token_to_id(UNK)

    def decode(self, ids: Iterable[int]) -> str:
        return join_pieces([self._backend.id_to_token(i) for i in ids])

    @classmethod
    def from_directory(cls, directory: Path) -> WordPieceTokenizer:
        return cls.from_vocab(directory / "vocab.txt")

    def _hf_config(self) -> dict:
        # BertTokenizerFast reads vocab.txt (or tokenizer.json) with these settings; its end-of-sequence is [SEP].
        return {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "tokenize_chinese_chars": True,
                "strip_accents": None, "unk_token": UNK, "sep_token": SEP, "pad_token": "[PAD]", "cls_token": "[CLS]",
                "mask_token": "[MASK]", "eos_token": SEP, "clean_up_tokenization_spaces": False}
