"""A real `gptkit serve` process on a free loopback port, one per test module, serving tiny models."""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import torch
from prometheus_client.parser import text_string_to_metric_families

from gptkit import GPT
from gptkit.chat.examples import DIALOGUE_TEMPLATE
from gptkit.tokenizer import Tokenizer, WordPieceTokenizer
from tests.conftest import tiny_model

TEXT = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,!?'\n你好今天天气很世界"


def save_model(directory: Path, seed: int, block_size: int = 64, eot: bool = True, dialogue: bool = False) -> str:
    """A tiny random model with a character vocabulary. Without ``eot`` it never ends a reply by
    itself (end-of-text gets a logit near -100), so every reply without a stop string runs to max_tokens."""
    tok = Tokenizer.char(TEXT)
    if dialogue:  # as `gptkit dialogue train` saves it: the server picks DialoGPT's template
        tok.chat_template = DIALOGUE_TEMPLATE
    model: GPT = tiny_model(seed, vocab_size=tok.vocab_size, block_size=block_size)
    if not eot:
        with torch.no_grad():
            model.ln_f.bias[0] = 10.0  # one hidden dimension always near 10 ...
            model.wte.weight[tok.eot_id, 0] = -10.0  # ... that end-of-text's logit reads negatively
    model.save_pretrained(directory, tok)
    return str(directory)


CHINESE = ["你好", "你好，最近怎么样？", "我很好，谢谢。", "你叫什么名字？", "我是一个机器人。", "今天天气很好。"]


def pin_special_tokens_low(model, tokenizer: Tokenizer, logit: float = -40.0) -> None:
    """Make the special tokens (end-of-text, unknown) all but impossible to sample, so that every reply
    runs to max_tokens: a long stream to stop, whatever the sampling settings.

    The output layer is the token embedding: logit_t = ln_f(h) . e_t. An untrained ln_f gives
    n(h) + b, and n(h) has zero mean over the features, so a constant embedding c*1 meets only the
    bias: with b = -1 everywhere and c = -logit / C, the token's logit is ``logit`` for every h."""
    C = model.config.n_embd
    assert torch.equal(model.ln_f.weight, torch.ones(C)), "needs an untrained final layer norm"
    with torch.no_grad():
        model.ln_f.bias.fill_(-1.0)
        for token in tokenizer.special_tokens.values():
            model.wte.weight[token] = -logit / C


def save_chinese_model(directory: Path, seed: int) -> str:
    """A tiny random dialogue model over a BERT-style WordPiece vocabulary learned from a few Chinese
    turns, that never picks a special token, so every reply is Chinese."""
    tok = WordPieceTokenizer.train(CHINESE)
    tok.chat_template = DIALOGUE_TEMPLATE
    model: GPT = tiny_model(seed, vocab_size=tok.vocab_size)
    pin_special_tokens_low(model, tok)
    model.save_pretrained(directory, tok)
    return str(directory)


class Server:
    """`gptkit serve --port 0 ARGS` in a child process, once it has printed its URL. Its output
    (stdout and stderr) is read to the end by a thread, so it never blocks on a full pipe, and kept
    for error messages."""

    def __init__(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120):
        self.process = subprocess.Popen([sys.executable, "-m", "gptkit", "serve", "--port", "0", *args], cwd=cwd,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8",
                                        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_for_url(timeout)  # http://127.0.0.1:PORT/

    @property
    def base_url(self) -> str:
        return self.url + "v1"

    def _read(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.process.kill()
                raise AssertionError(f"gptkit serve printed no URL in {timeout:.0f} s:\n{''.join(self.output)}") from None
            if line is None:
                raise AssertionError(f"gptkit serve exited ({self.process.wait()}):\n{''.join(self.output)}")
            if match := re.search(r"http://127\.0\.0\.1:\d+/", line):
                return match.group(0)

    def stop(self) -> tuple[int, str]:
        """SIGTERM, and the exit status and output once it has drained."""
        self.process.terminate()
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        return code, "".join(self.output)

    def metric(self, name: str, **labels: str) -> float:
        """The sum of /metrics samples called ``name`` with these labels."""
        with closing(connect(self)) as conn:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                   if sample.name == name and labels.items() <= sample.labels.items())


def connect(server) -> http.client.HTTPConnection:
    parts = urlsplit(server.url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)


def raw(server, method: str, path: str, body: bytes | dict | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], dict]:
    """(status, headers, JSON body) of one plain HTTP request."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    with closing(connect(server)) as conn:
        conn.request(method, path, data, {"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(response.read())


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory) -> dict[str, str]:
    """A plain LM that never emits end-of-text (context 512), a dialogue model with its MMI model, and a
    Chinese dialogue model on a WordPiece vocabulary."""
    root = tmp_path_factory.mktemp("serve_models")
    return {"lm": save_model(root / "lm", 0, block_size=512, eot=False),
            "chat": save_model(root / "chat", 1, dialogue=True), "mmi": save_model(root / "chat-mmi", 2),
            "zh": save_chinese_model(root / "zh", 3)}
