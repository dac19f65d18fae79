"""gptkit's GPT-2 tokenizer (Hugging Face tokenizers underneath) against tiktoken built from the same
packaged encoder.json + vocab.bpe: identical ids on all of Shakespeare, on adversarial strings and on
arbitrary Unicode text; identical decoding; lossless round trips."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gptkit.tokenizer import EOT, ByteLevelBPETokenizer, Tokenizer

ADVERSARIAL = [
    # emoji: ZWJ families, skin tones, flags, variation selectors
    "👨‍👩‍👧‍👦 family", "👍🏽👍🏿 👋🏻", "🏳️‍🌈 and 🏴‍☠️", "❤️‍🔥", "🇯🇵🇫🇷", "🧑🏾‍💻 codes",
    # CJK, Arabic, combining marks, other scripts
    "床前明月光，疑是地上霜。举头望明月，低头思故乡。", "こんにちは世界、カタカナとひらがな", "東京タワー",
    "مرحبا بالعالم", "שלום עולם", "e\u0301\u0302 a\u0308o\u0303", "Z\u0351\u0352\u0353\u0354algo", "ℵ𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟘𝟙",
    "\ufeffbyte order mark", "\U0010ffff\ufffd\ue000", "Ελληνικά кириллица",
    # control characters, lone CR / LF / tabs
    "".join(chr(i) for i in range(32)) + "\x7f", "a\x00b\x1bc\x7fd", "\r", "\n", "\t", "\r\n", "a\rb\r\nc\n\rd",
    "\t\tindented\n\ttab", "\x0b\x0c", "\x85next line",
    # runs of spaces and newlines: before a word, after a word, alone
    *[" " * n + "word" for n in (1, 2, 3, 50)], *["word" + " " * n for n in (1, 2, 3, 50)],
    *[" " * n for n in (1, 2, 3, 50)], "\n" * 50, "a\n\n\n\nb", "a \n \n b", " \n x", "\n\n  \n\t x  \n",
    # contractions, with and without the lower-case-only rule
    "he's", "HE'S", "''s", "'s", "'S", "we'll've", "I'M you'RE", "don't won't can't", "x'", "'",
    # digits
    "1234567890123456789012345678901234567890", "3.14159 2,718 1e-10", "٣٤٥ ૧૨૩", "year 2024!",
    # Unicode whitespace
    "a\u00a0b", "\u00a0" * 3, " \u00a0 x", "a\u3000b", "  \u3000 a", "line\u2028sep\u2029para", "\u2003em\u2009thin",
    # the special token spelled in text, whole and broken
    "x <|endoftext|> y", EOT, f"a{EOT}{EOT}b", f"{EOT}start", f"end{EOT}", f"  {EOT}  ", "<|endoftext", "endoftext|>",
    "<|endoftext|", "<|ENDOFTEXT|>", "",
]


def test_vocabulary_size_and_end_of_text(gpt2):
    assert isinstance(gpt2, ByteLevelBPETokenizer)
    assert gpt2.vocab_size == 50257
    assert gpt2.eot_id == 50256
    assert gpt2.special_tokens == {EOT: 50256}


def test_known_gpt2_ids(gpt2, reference):
    # Anchors independent of both implementations (OpenAI's published GPT-2 ids).
    assert gpt2.encode("hello world") == reference.encode("hello world") == [31373, 995]
    assert gpt2.encode("Hello world") == [15496, 995]
    assert gpt2.encode(" the") == [262]


def test_identical_to_tiktoken_on_all_of_shakespeare(gpt2, reference, works):
    assert len(works) == 42
    assert not any(EOT in text for text in works.values())
    for name, text in works.items():
        ids = gpt2.encode(text)
        assert ids == reference.encode_ordinary(text), name
        assert gpt2.decode(ids) == text, name


@pytest.mark.parametrize("text", ADVERSARIAL, ids=[repr(s)[:40] for s in ADVERSARIAL])
def test_identical_to_tiktoken_on_adversarial_text(gpt2, reference, text):
    ordinary = gpt2.encode(text, allow_special=False)
    assert ordinary == reference.encode_ordinary(text)
    assert gpt2.encode(text, allow_special=True) == reference.encode(text, allowed_special="all")
    assert gpt2.decode(ordinary) == reference.decode(ordinary) == text
    assert gpt2.decode(gpt2.encode(text)) == text


def test_end_of_text_in_the_middle(gpt2, reference):
    text = f"The end.{EOT}A new start"
    special = gpt2.encode(text, allow_special=True)
    assert special.count(50256) == 1
    assert special == reference.encode(text, allowed_special="all")
    assert special == gpt2.encode("The end.", allow_special=False) + [50256] + gpt2.encode("A new start")
    ordinary = gpt2.encode(text, allow_special=False)
    assert 50256 not in ordinary
    assert ordinary == reference.encode_ordinary(text)
    assert len(ordinary) > len(special)
    assert gpt2.decode(special) == gpt2.decode(ordinary) == text


def test_encode_batch_matches_encode(gpt2, reference, works):
    texts = [works["sonnets"][:20_000], *ADVERSARIAL]
    for allow in (True, False):
        assert gpt2.encode_batch(texts, allow_special=allow) == [gpt2.encode(t, allow) for t in texts]
    assert gpt2.encode_batch(texts, allow_special=False) == reference.encode_ordinary_batch(texts)


def test_decode_matches_tiktoken_on_broken_utf8(gpt2, reference):
    # Single byte-level tokens that are only part of a UTF-8 character decode to U+FFFD in both.
    ids = gpt2.encode("床前明月光 👍🏽")
    for i in range(len(ids)):
        for j in range(i + 1, len(ids) + 1):
            assert gpt2.decode(ids[i:j]) == reference.decode(ids[i:j]), ids[i:j]


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_arbitrary_unicode_matches_tiktoken_and_round_trips(gpt2, reference, text):
    ids = gpt2.encode(text, allow_special=False)
    assert ids == reference.encode_ordinary(text)
    assert gpt2.decode(ids) == text
    assert gpt2.decode(gpt2.encode(text)) == text
    assert gpt2.encode(text) == reference.encode(text, allowed_special="all")


_PIECES = st.sampled_from([
    " ", "  ", "\n", "\t", "\r", "\u00a0", "\u3000", "\u2028", "a", "Z", "7", "'", "s", "ll", "!", "é", "\u0301",
    "中", "👍", "\u200d", "\U0001f3fd", "\x00", EOT,
])


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECES, max_size=40).map("".join))
def test_whitespace_contraction_special_mixtures_match_tiktoken(gpt2, reference, text):
    # Text made of the pieces where the regex and the special-token split are most likely to differ.
    assert gpt2.encode(text, allow_special=False) == reference.encode_ordinary(text)
    assert gpt2.encode(text, allow_special=True) == reference.encode(text, allowed_special="all")
    assert gpt2.decode(gpt2.encode(text)) == text


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 50256), max_size=24))
def test_decode_of_arbitrary_ids_matches_tiktoken(gpt2, reference, ids):
    assert gpt2.decode(ids) == reference.decode(ids)


def test_save_and_load_reproduce_identical_ids(gpt2, tmp_path, works):
    gpt2.save(tmp_path)
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        assert (tmp_path / name).is_file(), name
    loaded = Tokenizer.load(tmp_path)
    assert isinstance(loaded, ByteLevelBPETokenizer)
    assert loaded.vocab_size == 50257 and loaded.eot_id == 50256
    texts = [works["tempest"], *ADVERSARIAL]
    for allow in (True, False):
        assert loaded.encode_batch(texts, allow) == gpt2.encode_batch(texts, allow)


def test_saved_files_are_openais_layout(gpt2, tmp_path):
    import json

    gpt2.save(tmp_path)
    vocab = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    assert len(vocab) == 50257 and vocab[EOT] == 50256 and vocab["Ġthe"] == 262
    merges = (tmp_path / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert merges[0].startswith("#") and merges[1] == "Ġ t" and len(merges) == 50001
    config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["gptkit_tokenizer"] == "bytelevel-bpe"
    assert config["eos_token"] == EOT and config["special_tokens"] == {EOT: 50256}
    assert config["tokenizer_class"] == "GPT2Tokenizer"


def test_added_special_tokens_extend_the_vocabulary_and_survive_save(tmp_path):
    tok = Tokenizer.gpt2()  # a private copy: adding tokens must not change the shared fixture
    assert tok.add_special_tokens(["<|start|>", "<|delim|>", EOT]) == [50257, 50258, 50256]
    assert tok.vocab_size == 50259
    text = "<|start|>Q<|delim|>A<|endoftext|>"
    assert tok.encode(text) == [50257, 48, 50258, 32, 50256]
    assert 50257 not in tok.encode(text, allow_special=False)
    assert tok.decode(tok.encode(text)) == text
    tok.save(tmp_path)
    loaded = Tokenizer.load(tmp_path)
    assert loaded.special_tokens == {EOT: 50256, "<|start|>": 50257, "<|delim|>": 50258}
    assert loaded.encode(text) == tok.encode(text)
    assert loaded.encode(text, allow_special=False) == tok.encode(text, allow_special=False)
