"""A dialogue model names its chat format: its tokenizer saves DialoGPT's template, which
`gptkit serve` picks up and transformers' apply_chat_template renders to the same ids."""

from __future__ import annotations

from transformers import AutoTokenizer

from gptkit.chat.examples import DIALOGUE_TEMPLATE, joined_ids
from gptkit.checkpoint import load_tokenizer
from gptkit.convert import export_hf
from gptkit.serve.template import pick_template
from gptkit.tokenizer import Tokenizer

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Good morrow, my lord."},
            {"role": "assistant", "content": "你好。"}, {"role": "user", "content": "What news?"}]


def test_the_forward_model_carries_dialogpts_template_and_the_backward_one_none(chat_models):
    forward, backward = (load_tokenizer(run) for run in chat_models)
    assert (forward.chat_template, backward.chat_template) == (DIALOGUE_TEMPLATE, None)


def test_the_server_picks_the_template_from_the_tokenizer_not_the_name():
    plain, dialogue = Tokenizer.char("abc"), Tokenizer.char("abc")
    dialogue.chat_template = DIALOGUE_TEMPLATE
    assert pick_template("runs/any", "auto", dialogue) == "dialogue"
    assert pick_template("runs/chat", "auto", plain) == "plain"
    assert pick_template("microsoft/DialoGPT-medium", "auto", plain) == "dialogue"
    assert pick_template("runs/any", "plain", dialogue) == "plain"


def test_transformers_renders_the_exported_template_to_gptkits_ids(chat_models, tmp_path):
    import gptkit

    model, tokenizer = gptkit.load(chat_models[0])
    export_hf(model, tokenizer, tmp_path / "hf")
    hf = AutoTokenizer.from_pretrained(tmp_path / "hf")
    turns = [m["content"] for m in MESSAGES if m["role"] != "system"]
    assert hf.apply_chat_template(MESSAGES, tokenize=True, return_dict=False) == joined_ids(tokenizer, turns)
