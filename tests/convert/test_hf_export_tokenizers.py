"""Exports transformers loads whole: every tokenizer gptkit saves comes back from AutoTokenizer with
gptkit's ids and text, and pipeline("text-generation") continues a prompt as `gptkit generate --greedy`."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from tokenizers import Tokenizer as Backend
from tokenizers import models, normalizers, pre_tokenizers, trainers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast, pipeline

import gptkit
from gptkit import GPT, GPTConfig, GptkitError
from gptkit.chat.data import bundled_dialogues
from gptkit.cli.main import cli
from gptkit.convert import export_hf
from gptkit.data import shakespeare
from gptkit.finetune.data import add_special_tokens
from gptkit.tokenizer import EOT, GPT1BPETokenizer, Tokenizer
from gptkit.tokenizer.char import UNK
from tests.conftest import tiny_model
from tests.convert.test_hf_tokenizers import ADVERSARIAL

ENGLISH = shakespeare()[0]["text"][:20_000]
CHINESE = ["\n".join(turns) for turns in bundled_dialogues("tang")]
TEXTS = [*ADVERSARIAL, ENGLISH[:2000], CHINESE[0], "<|unk|> 🤗<|endoftext|><|start|>", "<|endoftext|><|endoftext|>"]


def gpt1_bpe(scratch: Path) -> GPT1BPETokenizer:
    """A GPT-1-style vocabulary learned here (OpenAI's is not available offline): same pipeline, other merges."""
    backend = Backend(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.train_from_iterator([ENGLISH], trainers.BpeTrainer(vocab_size=600, special_tokens=["<unk>"],
                                                               end_of_word_suffix="</w>", show_progress=False))
    backend.model.save(str(scratch))
    return GPT1BPETokenizer.from_files(scratch / "vocab.json", scratch / "merges.txt")


def with_finetune_tokens(tokenizer: Tokenizer) -> Tokenizer:
    """As fine-tuning leaves it: start, delimiter and extract added as special tokens."""
    add_special_tokens(tokenizer)
    return tokenizer


TOKENIZERS: dict[str, Callable[[Path], Tokenizer]] = {  # each given a scratch directory
    "gpt2-bpe": lambda _: Tokenizer.gpt2(),
    "trained-bpe": lambda _: Tokenizer.train_bpe([ENGLISH, *CHINESE[:20]], vocab_size=400),
    "gpt1-bpe": gpt1_bpe,
    "gpt1-bpe-finetuned": lambda scratch: with_finetune_tokens(gpt1_bpe(scratch)),
    "char-english": lambda _: Tokenizer.char(ENGLISH),
    "char-chinese-finetuned": lambda _: with_finetune_tokens(Tokenizer.char("".join(CHINESE))),
}


@contextmanager
def no_warnings() -> Iterator[None]:
    """Fail on any Python warning or any warning transformers logs."""
    logged: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = logged.append
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            yield
    finally:
        logger.removeHandler(handler)
    assert not logged, [r.getMessage() for r in logged]


@pytest.mark.parametrize("kind", list(TOKENIZERS))
def test_autotokenizer_loads_the_export_with_gptkits_ids(kind, tmp_path):
    ours = TOKENIZERS[kind](tmp_path)
    ln_order = "post" if isinstance(ours, GPT1BPETokenizer) else "pre"
    export_hf(tiny_model(vocab_size=ours.vocab_size, ln_order=ln_order), ours, tmp_path / "hf")
    with no_warnings():
        hf = AutoTokenizer.from_pretrained(tmp_path / "hf")
    assert isinstance(hf, PreTrainedTokenizerFast)
    assert hf.eos_token == (EOT if ours.eot_id is not None else None)
    for text in TEXTS:
        ids = ours.encode(text)
        assert hf(text)["input_ids"] == ids, text[:60]
        assert hf(text, split_special_tokens=True)["input_ids"] == ours.encode(text, allow_special=False), text[:60]
        assert hf.decode(ids) == ours.decode(ids), text[:60]
    _, back = gptkit.load(tmp_path / "hf")  # and gptkit reads its own export
    assert [back.encode(t) for t in TEXTS] == [ours.encode(t) for t in TEXTS]


def test_characters_outside_the_vocabulary_are_the_unknown_token(tmp_path):
    ours = Tokenizer.char("abc ")
    export_hf(tiny_model(vocab_size=ours.vocab_size), ours, tmp_path)
    hf = AutoTokenizer.from_pretrained(tmp_path)
    unk = ours.special_tokens[UNK]
    assert hf.unk_token == UNK and hf.unk_token_id == unk and hf.eos_token_id == ours.eot_id
    assert hf("a你🤗\n")["input_ids"] == ours.encode("a你🤗\n") == [ours.encode("a")[0], unk, unk, unk]


def random_char_model(out: Path, text: str, preset: str, **overrides) -> str:
    """A model directory: random weights over the characters of ``text``. The unknown token's embedding
    is zeroed so it is never the greedy choice (as after any training): the pipeline leaves special
    tokens out of its text where gptkit prints <|unk|>."""
    tokenizer = Tokenizer.char(text)
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset(preset, vocab_size=tokenizer.vocab_size, **overrides)).eval()
    with torch.no_grad():
        model.wte.weight[tokenizer.special_tokens[UNK]] = 0
    model.save_pretrained(out, tokenizer)
    return str(out)


@pytest.mark.parametrize("text, preset, overrides, prompt", [
    (ENGLISH, "shakespeare-char", {}, "ROMEO:\nBut soft, what light"),  # the default model
    ("".join(CHINESE), "tiny", {"ln_order": "post"}, "床前明月光，"),  # a Chinese one, in GPT-1's layout
], ids=["english-char", "chinese-char"])
def test_pipeline_continues_as_gptkit_generate_greedy(text, preset, overrides, prompt, tmp_path):
    model_dir = random_char_model(tmp_path / "model", text, preset, **overrides)
    runner = CliRunner()
    exported = runner.invoke(cli, ["export", "--model", model_dir, "--format", "hf", "--out", str(tmp_path / "hf")])
    assert exported.exit_code == 0, exported.output
    ours = runner.invoke(cli, ["generate", "--model", model_dir, "--prompt", prompt, "--max-new-tokens", "20", "--greedy"])
    assert ours.exit_code == 0, ours.output
    theirs = pipeline("text-generation", model=str(tmp_path / "hf"))(prompt, max_new_tokens=20, do_sample=False)
    assert ours.stdout == theirs[0]["generated_text"] + "\n"
    assert len(set(ours.stdout[len(prompt):])) > 2  # a real continuation, not one repeated character


def test_export_of_a_model_saved_without_its_tokenizer_writes_weights_and_says_so(tmp_path, caplog):
    tiny_model().save_pretrained(tmp_path / "model")
    result = CliRunner().invoke(cli, ["export", "--model", str(tmp_path / "model"), "--out", str(tmp_path / "hf")])
    assert result.exit_code == 0, result.output
    assert any("no tokenizer files were written" in r.getMessage() for r in caplog.records)
    assert sorted(p.name for p in (tmp_path / "hf").iterdir()) == ["config.json", "model.safetensors"]
    AutoModelForCausalLM.from_pretrained(tmp_path / "hf")


@pytest.mark.parametrize("ln_order", ["pre", "post"])
def test_exported_config_stops_generation_at_end_of_text(ln_order, tmp_path):
    ours = Tokenizer.char("abc")
    export_hf(tiny_model(vocab_size=ours.vocab_size, ln_order=ln_order), ours, tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).eos_token_id == ours.eot_id


def test_a_transformers_directory_without_tokenizer_files_loads_as_a_model_alone(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from gptkit.checkpoint import load

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=300, n_positions=64)).save_pretrained(tmp_path)
    model, tokenizer = load(tmp_path, require_tokenizer=False)
    assert tokenizer is None and model.config.n_layer == 1
    with pytest.raises(GptkitError, match="vocab.json is missing"):
        load(tmp_path)
