"""The character tokenizer: vocabulary from text, lossless round trips, unknown characters, special
tokens, save/load."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptkit.errors import GptkitError
from gptkit.tokenizer import EOT, CharTokenizer, Tokenizer
from gptkit.tokenizer.char import UNK

POEM = "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n"


def test_vocabulary_is_specials_then_sorted_characters():
    tok = Tokenizer.char("hello, world")
    assert isinstance(tok, CharTokenizer)
    assert tok.itos == [EOT, UNK, " ", ",", "d", "e", "h", "l", "o", "r", "w"]
    assert tok.vocab_size == 11
    assert tok.eot_id == 0
    assert tok.special_tokens == {EOT: 0, UNK: 1}
    assert tok.encode("hello") == [6, 5, 7, 7, 8]


def test_the_source_text_encodes_without_unknowns_even_when_it_spells_end_of_text():
    # prepare encodes documents with allow_special=False: a literal "<|endoftext|>" in the corpus
    # must then become its characters, not <|unk|> tokens.
    text = f"ab{EOT}c"
    tok = Tokenizer.char(text)
    assert tok.itos == [EOT, UNK, *sorted(set(text))]
    plain = tok.encode(text, allow_special=False)
    assert tok.stoi[UNK] not in plain and tok.eot_id not in plain
    assert tok.decode(plain) == text
    assert tok.encode(text) == tok.encode("ab") + [tok.eot_id] + tok.encode("c")


@pytest.mark.parametrize("text", [POEM, "Hello, World!\n\tTabs and  spaces\r\n", "👨‍👩‍👧 e\u0301 \x00\x7f", ""])
def test_round_trip(text):
    tok = Tokenizer.char(text)
    ids = tok.encode(text)
    assert len(ids) == len(text)  # one token per code point
    assert UNK not in tok.decode(ids)
    assert tok.decode(ids) == text
    assert tok.encode(text, allow_special=False) == ids


def test_chinese_poem_ids():
    tok = Tokenizer.char(POEM)
    chars = sorted(set(POEM))
    assert tok.vocab_size == 2 + len(chars)
    assert tok.encode("明月") == [2 + chars.index("明"), 2 + chars.index("月")]
    assert tok.decode(tok.encode("低头思故乡")) == "低头思故乡"


def test_unknown_characters_map_to_unk():
    tok = Tokenizer.char("abc")
    unk = tok.special_tokens[UNK]
    assert tok.encode("axbz😀c") == [2, unk, 3, unk, unk, 4]
    assert tok.encode("\U0010ffff\x00") == [unk, unk]  # beyond and below every known code point
    assert tok.decode(tok.encode("xa")) == UNK + "a"


def test_a_vocabulary_without_characters_maps_everything_to_unk():
    tok = Tokenizer.char("")
    assert tok.vocab_size == 2
    assert tok.encode("ab") == [1, 1]
    assert tok.encode(f"a{EOT}") == [1, 0]
    assert tok.encode("") == []


def test_end_of_text_with_and_without_allow_special():
    tok = Tokenizer.char("ab<|endoftx>")  # every character of the special token spelled out
    text = f"ab{EOT}ba"
    assert tok.encode(text, allow_special=True) == tok.encode("ab") + [tok.eot_id] + tok.encode("ba")
    plain = tok.encode(text, allow_special=False)
    assert tok.eot_id not in plain
    assert plain == tok.encode("ab") + tok.encode(EOT, allow_special=False) + tok.encode("ba")
    assert len(plain) == len(text)
    assert tok.decode(plain) == tok.decode(tok.encode(text)) == text


def test_unk_spelled_in_text_is_the_unk_token_only_when_specials_are_allowed():
    tok = Tokenizer.char("<|unk>")
    assert tok.encode(UNK) == [1]
    assert tok.encode(UNK, allow_special=False) == tok.encode("<") + tok.encode("|unk|>")
    assert 1 not in tok.encode(UNK, allow_special=False)


def test_add_special_tokens():
    tok = Tokenizer.char("abc")
    ids = tok.add_special_tokens(["<|start|>", "<|sep|>", EOT])
    assert ids == [5, 6, 0]
    assert tok.vocab_size == 7
    assert tok.special_tokens == {EOT: 0, UNK: 1, "<|start|>": 5, "<|sep|>": 6}
    assert tok.encode("<|start|>ab<|sep|>c") == [5, 2, 3, 6, 4]
    assert tok.add_special_tokens(["<|sep|>"]) == [6] and tok.vocab_size == 7  # idempotent
    assert tok.decode([5, 2, 6, 0]) == "<|start|>a<|sep|><|endoftext|>"


def test_save_and_load_round_trip(tmp_path):
    tok = Tokenizer.char(POEM + "abc")
    tok.add_special_tokens(["<|user|>", "<|bot|>"])
    tok.save(tmp_path)
    assert (tmp_path / "vocab.json").is_file()
    config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["gptkit_tokenizer"] == "char"
    assert config["special_tokens"] == {EOT: 0, UNK: 1, "<|user|>": tok.vocab_size - 2, "<|bot|>": tok.vocab_size - 1}
    loaded = Tokenizer.load(tmp_path)
    assert isinstance(loaded, CharTokenizer)
    assert loaded.itos == tok.itos
    assert loaded.special_tokens == tok.special_tokens
    text = f"<|user|>床前明月光<|bot|>疑是地上霜。xyz{EOT}"
    assert loaded.encode(text) == tok.encode(text)
    assert loaded.encode(text, allow_special=False) == tok.encode(text, allow_special=False)
    assert loaded.decode(loaded.encode(POEM)) == POEM


def test_load_rejects_a_vocabulary_with_gaps(tmp_path):
    Tokenizer.char("abc").save(tmp_path)
    (tmp_path / "vocab.json").write_text(json.dumps({EOT: 0, UNK: 1, "a": 3}), encoding="utf-8")
    with pytest.raises(GptkitError, match="without gaps"):
        Tokenizer.load(tmp_path)


def test_load_rejects_a_vocabulary_without_the_specials_first(tmp_path):
    Tokenizer.char("abc").save(tmp_path)
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0, EOT: 1, UNK: 2}), encoding="utf-8")
    with pytest.raises(GptkitError, match="must start with"):
        Tokenizer.load(tmp_path)


def test_load_reports_a_missing_or_corrupt_vocabulary(tmp_path):
    Tokenizer.char("abc").save(tmp_path)
    (tmp_path / "vocab.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(GptkitError, match="vocab.json"):
        Tokenizer.load(tmp_path)
    (tmp_path / "vocab.json").unlink()
    with pytest.raises(GptkitError, match="vocab.json"):
        Tokenizer.load(tmp_path)


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(), st.text())
def test_any_text_round_trips_and_unseen_characters_are_unk(vocab_text, text):
    tok = Tokenizer.char(vocab_text)
    ids = tok.encode(text, allow_special=False)
    assert len(ids) == len(text)
    for ch, i in zip(text, ids):
        assert i == (tok.stoi[ch] if ch in tok.stoi else tok.stoi[UNK])
    if EOT not in text and UNK not in text:
        assert tok.encode(text) == ids
    own = Tokenizer.char(text)
    assert own.decode(own.encode(text)) == text
    assert own.decode(own.encode(text, allow_special=False)) == text


def test_characters_outside_the_vocabulary_are_reported_once(caplog):
    tok = Tokenizer.char("hello world")
    reported: set[str] = set()
    with caplog.at_level("WARNING", logger="gptkit"):
        tok.warn_unknown("hello 你好", reported)
        tok.warn_unknown("好 你 hello", reported)  # nothing new: no second message
        tok.warn_unknown("hello z", reported)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["not in this model's vocabulary (read as unknown): 你 好",
                        "not in this model's vocabulary (read as unknown): z"]
    assert Tokenizer.gpt2().unknown_characters("你好 ☃") == []  # byte-level BPE reads every text
