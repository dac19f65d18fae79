"""BERT-style WordPiece (vocab.txt): learned from the bundled Chinese chit-chat or read from a file,
Chinese text decoded without spaces, and transformers' BertTokenizerFast giving the same ids."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer, BertTokenizerFast

from gptkit.chat.data import bundled_dialogues
from gptkit.convert import export_hf
from gptkit.data.vocab import tokenizer_from_spec
from gptkit.errors import GptkitError
from gptkit.inference.generate import TextDecoder
from gptkit.tokenizer import Tokenizer, WordPieceTokenizer
from tests.conftest import tiny_model

TURNS = [t for turns in bundled_dialogues("chatterbot-zh") for t in turns]
TEXTS = ["你好", "嗨，最近如何?", "什么是ai", "你最喜欢什么颜色?", "I like Python, and 你好。", "  你好\t世界\n",
         "今天天气怎么样？", "Ünïcödé 🤗 [SEP] [CLS]你好[SEP]", "ABC 123 4.5%"]


@pytest.fixture(scope="module")
def tok() -> WordPieceTokenizer:
    return WordPieceTokenizer.train(TURNS, vocab_size=2000)


def test_learned_vocabulary_has_berts_specials_and_every_chinese_character_as_a_token(tok):
    assert tok.special_tokens == {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
    assert tok.eot_id == 3 and tok.unk_id == 1  # turns are separated by [SEP], as in GPT2-chitchat
    hanzi = sorted({c for t in TURNS for c in t if "\u4e00" <= c <= "\u9fff"})
    assert [len(tok.encode(c)) for c in hanzi] == [1] * len(hanzi)
    assert tok.encode("你好") == [tok.encode("你")[0], tok.encode("好")[0]]


def test_chinese_decodes_without_spaces_and_english_words_with_them(tok):
    assert tok.decode(tok.encode("你好，最近如何?")) == "你好，最近如何?"
    # BERT lower-cases, and keeps no spaces next to Chinese characters
    assert tok.decode(tok.encode("什么是AI? I like Python, 你呢？")) == "什么是ai? i like python,你呢？"


def test_streamed_pieces_add_up_to_the_decoded_text(tok):
    ids = tok.encode("我喜欢 python 和 ai，你呢？")
    decoder = TextDecoder(tok)
    assert "".join(decoder.push(i) for i in ids) + decoder.flush() == tok.decode(ids)


def test_characters_outside_the_vocabulary_are_reported(tok):
    assert "今" not in "".join(TURNS)
    assert tok.unknown_characters("今天好") == ["今"]
    assert tok.encode("今") == [tok.unk_id]


def test_save_and_load_give_the_same_ids(tok, tmp_path):
    tok.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokenizer.json", "tokenizer_config.json", "vocab.txt"]
    back = Tokenizer.load(tmp_path)
    assert isinstance(back, WordPieceTokenizer)
    assert [back.encode(t) for t in TEXTS] == [tok.encode(t) for t in TEXTS]
    assert (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines()[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def test_bert_tokenizer_fast_reads_the_export_and_the_vocab_txt_alone_with_the_same_ids(tok, tmp_path):
    export_hf(tiny_model(vocab_size=tok.vocab_size), tok, tmp_path / "hf")
    auto = AutoTokenizer.from_pretrained(tmp_path / "hf")
    (tmp_path / "bert").mkdir()  # vocab.txt alone, as BERT checkpoints ship it: transformers' own reading of it
    (tmp_path / "bert" / "vocab.txt").write_bytes((tmp_path / "hf" / "vocab.txt").read_bytes())
    alone = BertTokenizerFast.from_pretrained(tmp_path / "bert")
    assert isinstance(auto, BertTokenizerFast)
    assert auto.eos_token == auto.sep_token == "[SEP]" and auto.unk_token_id == tok.unk_id
    for text in TEXTS:
        ids = tok.encode(text)
        assert auto(text, add_special_tokens=False)["input_ids"] == ids, text
        assert alone(text, add_special_tokens=False)["input_ids"] == ids, text
        assert auto.decode(ids).replace(" ", "") == tok.decode(ids).replace(" ", ""), text


def test_a_bert_vocab_txt_is_a_tokenizer_spec(tmp_path):
    """GPT2-chitchat ships bert-base-chinese's vocab.txt: gptkit reads such a file as it is."""
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "你", "好", "吗", "hello", "##s"]) + "\n",
                     encoding="utf-8")
    tok = tokenizer_from_spec(str(vocab))
    assert isinstance(tok, WordPieceTokenizer)
    assert tok.encode("你好吗") == [5, 6, 7] and tok.encode("Hellos 你") == [8, 9, 5] and tok.encode("谁") == [1]
    assert isinstance(tokenizer_from_spec("wordpiece", ["你好", "再见"]), WordPieceTokenizer)


def test_a_vocab_txt_without_the_separator_or_missing_is_a_clear_error(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[UNK]\n你\n", encoding="utf-8")
    with pytest.raises(GptkitError, match=r"must contain \[SEP\]"):
        WordPieceTokenizer.from_vocab(vocab)
    with pytest.raises(GptkitError, match="is missing"):
        WordPieceTokenizer.from_vocab(tmp_path / "absent.txt")
