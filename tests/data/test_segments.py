"""Cutting documents into segments never changes their ids, and prepare's GPT-2 ids are OpenAI's:
tiktoken built by its own loader from the packaged files, and gptkit's Hugging Face GPT-2 tokenizer."""

from __future__ import annotations

import os
import sys
from importlib import resources

import numpy as np
import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from gptkit.data import TextFile, prepare, shakespeare
from gptkit.data.encoders import GPT2_PATTERN, is_gpt2, make_encoder, saved_files
from gptkit.data.segments import last_cut, segments
from gptkit.tokenizer import EOT, Tokenizer
from gptkit.tokenizer.bpe import GPT2_DIGESTS

from .helpers import split_tokens

# Strings around which a careless cut would change the ids: whitespace of every kind and length,
# contractions, digits, non-Latin scripts, the end-of-text token spelled out.
BOUNDARIES = [
    "a b", "a  b", "a\nb", "a\n\nb", "a \nb", "a\n b", "a\r\nb", "a\rb", "a\tb", "a\u00a0b", "a\u3000b", "a\u2028b",
    "a\x1cb", "a\x85b", "x\n\n\n\n", "  lead", "trail  ", "he's", "he 's", "don't", "'s'", "I'M", "1 2 3", "3.14 15",
    "床前 明月光", "こんにちは 世界", "مرحبا بالعالم", "👍🏽 👋", "e\u0301 x", EOT, f"a {EOT} b", "\ufeffbom", "\ufffd \ufffd",
]
ALPHABET = st.sampled_from(["a", "Z", "é", "明", "1", "'", "'s", "'ll", ".", "!", "😀", " ", "  ", "\n", "\n\n", "\t",
                            "\r\n", "\u00a0", "\u3000", "\x0b", "\x1c", EOT])


@pytest.fixture(scope="module")
def gpt2():
    return Tokenizer.gpt2()


@pytest.fixture(scope="module")
def encode(gpt2):
    encode, splittable = make_encoder(gpt2, saved_files(gpt2))
    assert splittable
    return lambda text: encode([text])[0].tolist()


@pytest.fixture(scope="module")
def reference():
    """tiktoken's own loader of the packaged encoder.json + vocab.bpe (never a downloaded copy)."""
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    assets = resources.files("gptkit.tokenizer") / "assets"
    os.environ["TIKTOKEN_CACHE_DIR"] = ""  # read the files themselves, no cache
    try:
        with resources.as_file(assets) as folder:
            ranks = data_gym_to_mergeable_bpe_ranks(str(folder / "vocab.bpe"), str(folder / "encoder.json"),
                                                    GPT2_DIGESTS["vocab.bpe"], GPT2_DIGESTS["encoder.json"])
    finally:
        del os.environ["TIKTOKEN_CACHE_DIR"]
    return tiktoken.Encoding("reference", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={EOT: 50256})


def pieces(text: str, n: int) -> list[str]:
    return [text[i : i + n] for i in range(0, len(text), n)]


def test_every_unicode_whitespace_character_is_python_whitespace():
    # The cut rule asks Python whether the character before a cut is whitespace; the pattern's \s is
    # Unicode White_Space. Every White_Space character must count as whitespace to Python too.
    every = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000)
    white = regex.findall(r"\p{White_Space}", every)
    assert len(white) == 25 and all(c.isspace() for c in white)


def test_segments_reassemble_and_cut_only_before_whitespace_after_a_non_space():
    text = "word " * 50 + "\n\n" + "明" * 300 + " x\n"
    for size in (1, 7, 64, 10_000):
        parts = list(segments(pieces(text, 13), size))
        assert "".join(parts) == text
        assert all(p[0] in " \n" and not prev[-1].isspace() for prev, p in zip(parts, parts[1:]))
    assert max(len(p) for p in segments([text], 64)) > 64  # 300 characters without a cut stay whole
    assert last_cut("   \n\n  ", 0, 7) == -1 and last_cut("ab cd", 0, 5) == 2


def test_ids_of_segments_equal_the_whole_on_all_of_shakespeare(encode, reference):
    for work in shakespeare():
        text = work["text"]
        ids = [i for part in segments(pieces(text, 5000), 2000) for i in encode(part)]
        assert ids == reference.encode_ordinary(text), work["name"]


@pytest.mark.parametrize("text", BOUNDARIES, ids=[repr(s)[:20] for s in BOUNDARIES])
def test_ids_equal_tiktoken_and_huggingface_on_adversarial_text(encode, reference, gpt2, text):
    padded = f"x{text} y\n{text}"
    whole = reference.encode_ordinary(padded)
    assert encode(padded) == whole == gpt2.encode(padded, allow_special=False)
    for size in (1, 2, 3, 5):
        assert [i for part in segments([padded], size) for i in encode(part)] == whole


@settings(max_examples=150, deadline=None)
@given(st.lists(ALPHABET, max_size=60), st.integers(1, 12))
def test_ids_of_segments_equal_the_whole_on_random_text(encode, reference, parts, size):
    text = "".join(parts)
    assert [i for part in segments(pieces(text, 4), size) for i in encode(part)] == reference.encode_ordinary(text)


def test_a_trained_bpe_and_a_character_vocabulary_are_cut_safely_too():
    text = shakespeare()[0]["text"][:60_000]
    for tok in (Tokenizer.train_bpe([text], 400), Tokenizer.char(text)):
        encode, splittable = make_encoder(tok, saved_files(tok))
        assert splittable
        whole = tok.encode(text, allow_special=False)
        assert [i for part in segments([text], 3000) for i in encode([part])[0].tolist()] == whole


def test_gpt2_is_recognised_by_its_files_whatever_object_holds_it(tmp_path, gpt2):
    gpt2.save(tmp_path / "saved")
    assert is_gpt2(saved_files(Tokenizer.load(tmp_path / "saved")))
    assert not is_gpt2(saved_files(Tokenizer.train_bpe(["some text to learn"], 300)))
    assert not is_gpt2(saved_files(Tokenizer.char("abc")))


def test_a_document_larger_than_a_segment_prepares_to_the_ids_of_the_whole(tmp_path, gpt2, reference):
    text = "".join(w["text"] for w in shakespeare()[:12])  # about 1.5 MB: cut into segments of 1 MiB
    (tmp_path / "big.txt").write_text(text, encoding="utf-8")
    prepare([("train", TextFile(tmp_path / "big.txt"))], gpt2, tmp_path / "out", workers=2, progress=False)
    np.testing.assert_array_equal(split_tokens(tmp_path / "out", "train"), [50256, *reference.encode_ordinary(text)])
