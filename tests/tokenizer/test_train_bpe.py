"""Byte-level BPE trained on your own text: the requested size, lossless, and identical after save/load."""

from __future__ import annotations

import json

import pytest

from gptkit.errors import GptkitError
from gptkit.tokenizer import EOT, ByteLevelBPETokenizer, Tokenizer

TRAIN_WORKS = ("sonnets", "lovers_complaint", "phoenix_and_the_turtle")


@pytest.fixture(scope="module")
def texts(works) -> list[str]:
    return [works[n] for n in TRAIN_WORKS]


@pytest.fixture(scope="module")
def trained(texts) -> ByteLevelBPETokenizer:
    return Tokenizer.train_bpe(texts, 1000)


@pytest.mark.parametrize("vocab_size", [257, 258, 300, 1000, 2000])
def test_exactly_the_requested_vocab_size(texts, vocab_size):
    tok = Tokenizer.train_bpe(texts, vocab_size)
    assert tok.vocab_size == vocab_size
    assert tok.special_tokens == {EOT: 0}
    assert tok.eot_id == 0


def test_a_tiny_corpus_gives_fewer_tokens_than_asked():
    # With min_frequency=2 only pairs seen twice are merged: "aaa bbb" has just "aa" and "bb" (and
    # the byte alphabet + end-of-text = 257). The trainer stops early rather than invent tokens.
    tok = Tokenizer.train_bpe(["aaa bbb"], 300)
    assert tok.vocab_size == 259
    assert tok.decode(tok.encode("aaa bbb")) == "aaa bbb"


@pytest.mark.parametrize("vocab_size", [0, 100, 256])
def test_too_small_vocab_size_raises(vocab_size):
    with pytest.raises(GptkitError, match="at least 257"):
        Tokenizer.train_bpe(["some text"], vocab_size)


def test_merges_compress_the_training_text(trained, works):
    sonnet = works["sonnets"][:20_000]
    assert len(trained.encode(sonnet)) < 0.5 * len(sonnet.encode("utf-8"))


@pytest.mark.parametrize("text", [
    "From fairest creatures we desire increase,\n", "床前明月光 👨‍👩‍👧 e\u0301", "\x00\x7f\r\n\t  \n", "",
    f"two{EOT}documents",
])
def test_round_trip_including_unseen_bytes(trained, text):
    assert trained.decode(trained.encode(text)) == text
    assert trained.decode(trained.encode(text, allow_special=False)) == text


def test_round_trip_on_a_held_out_work(trained, works):
    text = works["tempest"]
    assert trained.decode(trained.encode(text)) == text


def test_end_of_text_is_one_token_only_when_allowed(trained):
    assert trained.encode(f"a{EOT}b") == trained.encode("a") + [0] + trained.encode("b")
    assert 0 not in trained.encode(f"a{EOT}b", allow_special=False)


def test_save_and_load_give_identical_ids(trained, works, tmp_path):
    trained.save(tmp_path)
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        assert (tmp_path / name).is_file(), name
    assert len(json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))) == 1000
    loaded = Tokenizer.load(tmp_path)
    assert isinstance(loaded, ByteLevelBPETokenizer)
    assert loaded.vocab_size == 1000 and loaded.special_tokens == {EOT: 0}
    texts = [works["tempest"], works["sonnets"][:5000], f"x{EOT}y", "床前明月光"]
    for allow in (True, False):
        assert loaded.encode_batch(texts, allow) == trained.encode_batch(texts, allow)


def test_added_special_tokens_survive_save_and_load(texts, tmp_path):
    tok = Tokenizer.train_bpe(texts, 500)
    assert tok.add_special_tokens(["<|user|>", "<|bot|>"]) == [500, 501]
    assert tok.vocab_size == 502
    tok.save(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["special_tokens"] == {EOT: 0, "<|user|>": 500, "<|bot|>": 501}
    loaded = Tokenizer.load(tmp_path)
    assert loaded.special_tokens == {EOT: 0, "<|user|>": 500, "<|bot|>": 501}
    text = f"<|user|>Shall I compare thee?<|bot|>To a summer's day.{EOT}"
    assert loaded.encode(text) == tok.encode(text)
    assert loaded.encode(text)[0] == 500 and 501 in loaded.encode(text) and loaded.encode(text)[-1] == 0
    assert loaded.encode(text, allow_special=False) == tok.encode(text, allow_special=False)
    assert not {0, 500, 501} & set(loaded.encode(text, allow_special=False))
    assert loaded.decode(loaded.encode(text)) == text


def test_saved_special_ids_that_no_longer_fit_are_reported(texts, tmp_path):
    tok = Tokenizer.train_bpe(texts, 400)
    tok.add_special_tokens(["<|user|>"])
    tok.save(tmp_path)
    config_path = tmp_path / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["special_tokens"]["<|user|>"] = 999
    config_path.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(GptkitError, match="differ from the saved ones"):
        Tokenizer.load(tmp_path)
