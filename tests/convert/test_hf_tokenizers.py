"""gptkit's GPT-2 and GPT-1 tokenizers against the reference tokenizers of `transformers`."""

import pytest
from tokenizers import Tokenizer as Backend
from tokenizers import models, normalizers, pre_tokenizers, trainers
from transformers import GPT2Tokenizer, GPT2TokenizerFast, OpenAIGPTTokenizer

from gptkit import Tokenizer
from gptkit.data import shakespeare
from gptkit.tokenizer import GPT1BPETokenizer

ADVERSARIAL = [
    "", " ", "   leading", "trailing   ", "a\n\n\nb", "\t\ttabs", "It's, isn't, they'll, we'VE", "''s",
    "naïve café résumé", "Ünïcödé ÀÉÎ", "你好，世界！床前明月光", "日本語のテキスト", "مرحبا بالعالم", "👩‍👩‍👧‍👦 👍🏽 🤗",
    "e\u0301 combining", "\x00\x01\x1f control\x7f", "\u00a0nbsp\u3000ideographic\u2028sep", "1234567890 3.14159",
    "--- ... !!! ??? (((x)))", "<|endoftext|>", "before<|endoftext|>after", "Mr. O'Neil's \"quote\" — dash – en",
    "HAMLET.\nTo be, or not to be: that is the question:\n", "x" * 300, " " * 40 + "end",
]


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return [w["text"] for w in shakespeare()]


@pytest.fixture(scope="module")
def gpt2_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpt2_tok")
    Tokenizer.gpt2().save(out)
    return out


def test_gpt2_matches_transformers_fast_and_slow(gpt2_files, corpus):
    ours = Tokenizer.gpt2()
    fast = GPT2TokenizerFast.from_pretrained(gpt2_files)
    slow = GPT2Tokenizer.from_pretrained(gpt2_files)
    assert fast.vocab_size == slow.vocab_size == 50257
    for text in ADVERSARIAL + corpus[:3]:
        expected = fast(text, add_special_tokens=False)["input_ids"]
        assert ours.encode(text) == expected, text[:60]
        assert slow(text, add_special_tokens=False)["input_ids"] == expected, text[:60]


@pytest.fixture(scope="module")
def gpt1_files(tmp_path_factory, corpus):
    """A GPT-1-style vocabulary (lower case, BERT pre-tokenizer, </w> word ends) learned from the corpus.

    OpenAI's GPT-1 vocabulary is not available offline; what is compared is the tokenization algorithm,
    which is the same whatever vocabulary it runs on."""
    backend = Backend(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=["<unk>"], end_of_word_suffix="</w>", show_progress=False)
    backend.train_from_iterator(corpus[:10], trainer=trainer)
    out = tmp_path_factory.mktemp("gpt1_tok")
    backend.model.save(str(out))
    return out


def test_gpt1_matches_transformers_on_corpus_and_adversarial_strings(gpt1_files, corpus):
    ours = GPT1BPETokenizer.from_files(gpt1_files / "vocab.json", gpt1_files / "merges.txt")
    ref = OpenAIGPTTokenizer(vocab=str(gpt1_files / "vocab.json"), merges=str(gpt1_files / "merges.txt"))
    texts = ADVERSARIAL + corpus[10:14]  # held-out works: words the vocabulary never saw
    for text in texts:
        assert ours.encode(text) == ref(text, add_special_tokens=False)["input_ids"], text[:60]
    sample = ours.encode("To be, or NOT to be")
    assert ours.decode(sample) == "to be , or not to be"  # lower case, punctuation split off


def test_gpt1_tokenizer_saves_and_loads(gpt1_files, tmp_path):
    ours = GPT1BPETokenizer.from_files(gpt1_files / "vocab.json", gpt1_files / "merges.txt")
    ours.add_special_tokens(["_start_", "_delimiter_", "_classify_"])
    ours.save(tmp_path)
    back = Tokenizer.load(tmp_path)
    assert isinstance(back, GPT1BPETokenizer) and back.eot_id is None
    text = "_start_ a premise _delimiter_ a hypothesis _classify_"
    assert back.encode(text) == ours.encode(text) and back.vocab_size == ours.vocab_size
