"""`gptkit serve` with a Chinese dialogue model on a BERT-style WordPiece vocabulary (as GPT2-chitchat's),
reranked by MMI, answering the openai client in Chinese; and the warning, in the response and in a
header, when a request holds characters the model cannot read."""

from __future__ import annotations

import pytest
import torch
from openai import OpenAI

from gptkit.chat.examples import DIALOGUE_TEMPLATE
from gptkit.serve.app import WARNING_HEADER
from gptkit.tokenizer import WordPieceTokenizer
from gptkit.tokenizer.wordpiece import CJK_CHAR
from tests.conftest import tiny_model
from tests.serve.conftest import Server

pytestmark = pytest.mark.slow

CHINESE = ["你好", "你好，最近怎么样？", "我很好，谢谢。", "你叫什么名字？", "我是一个机器人。", "今天天气很好。"]
NOTE = "not in this model's vocabulary (read as unknown): "


def untrained(tok: WordPieceTokenizer, seed: int):
    """A tiny random model that never picks a special token (their logits pinned at -40: an untrained
    ln_f has zero mean, so a constant embedding row meets only the bias), so every reply is Chinese."""
    model = tiny_model(seed, vocab_size=tok.vocab_size)
    with torch.no_grad():
        model.ln_f.bias.fill_(-1.0)
        for token in tok.special_tokens.values():
            model.wte.weight[token] = 40.0 / model.config.n_embd
    return model


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve_chinese")
    tok = WordPieceTokenizer.train(CHINESE)
    untrained(tok, 1).save_pretrained(root / "zh-mmi", tok)
    tok.chat_template = DIALOGUE_TEMPLATE  # as `gptkit dialogue train` saves it
    untrained(tok, 0).save_pretrained(root / "zh", tok)
    server = Server("--model", "zh", "--mmi-model", "zh-mmi", "--num-hypotheses", "3", cwd=root)
    yield server, tok
    server.stop()


@pytest.fixture(scope="module")
def client(server) -> OpenAI:
    return OpenAI(base_url=server[0].base_url, api_key="unused", max_retries=0)


def chinese_in_vocabulary(text: str, tok: WordPieceTokenizer) -> bool:
    return bool(text) and all(CJK_CHAR.match(c) for c in text) and not tok.unknown_characters(text)


def test_the_openai_client_gets_a_chinese_reply_reranked_and_streamed(client, server):
    messages = [{"role": "user", "content": "你好"}]
    reply = client.chat.completions.create(model="zh", messages=messages, max_tokens=6, seed=0)
    assert chinese_in_vocabulary(reply.choices[0].message.content, server[1]), reply.choices[0].message.content
    assert "warnings" not in reply.model_extra  # every character of the request is in the vocabulary
    pieces = [c.choices[0].delta.content or "" for c in
              client.chat.completions.create(model="zh", messages=messages, max_tokens=6, seed=0, stream=True)]
    assert chinese_in_vocabulary("".join(pieces), server[1]) and len([p for p in pieces if p]) > 1


def test_characters_outside_the_vocabulary_are_a_warning_field_and_header(client):
    messages = [{"role": "user", "content": "你好吗？"}]  # 吗 is not in the vocabulary
    raw = client.chat.completions.with_raw_response.create(model="zh", messages=messages, max_tokens=4, seed=0)
    assert raw.headers[WARNING_HEADER] == NOTE + "U+5417"
    reply = raw.parse()
    assert reply.model_extra["warnings"] == [{"code": "unknown_characters", "message": NOTE + "吗", "characters": ["吗"]}]
    assert reply.choices[0].message.content  # the reply comes all the same
    chunks = list(client.chat.completions.create(model="zh", messages=messages, max_tokens=4, seed=0, stream=True))
    assert chunks[0].model_extra["warnings"][0]["characters"] == ["吗"]  # on the first chunk only
    assert all("warnings" not in c.model_extra for c in chunks[1:])
    completion = client.completions.create(model="zh", prompt="吗呢", max_tokens=2)
    assert completion.model_extra["warnings"][0]["characters"] == ["吗", "呢"]
