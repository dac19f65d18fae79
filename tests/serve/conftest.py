"""A real `gptkit serve` process on a free loopback port, one per test module, serving tiny models."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import torch

from gptkit import GPT
from gptkit.tokenizer import Tokenizer
from tests.conftest import tiny_model

TEXT = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,!?'\n你好今天天气很世界"


def save_model(directory: Path, seed: int, block_size: int = 64, eot: bool = True) -> str:
    """A tiny random model with a character vocabulary. Without ``eot`` it never ends a reply by
    itself (end-of-text gets a logit near -100), so every reply without a stop string runs to max_tokens."""
    tok = Tokenizer.char(TEXT)
    model: GPT = tiny_model(seed, vocab_size=tok.vocab_size, block_size=block_size)
    if not eot:
        with torch.no_grad():
            model.ln_f.bias[0] = 10.0  # one hidden dimension always near 10 ...
            model.wte.weight[tok.eot_id, 0] = -10.0  # ... that end-of-text's logit reads negatively
    model.save_pretrained(directory, tok)
    return str(directory)


@dataclass
class Server:
    url: str  # http://127.0.0.1:PORT/
    process: subprocess.Popen

    @property
    def base_url(self) -> str:
        return self.url + "v1"


def start_server(*args: str, env: dict[str, str] | None = None) -> Server:
    """Start `gptkit serve --port 0 ARGS` and wait for the line with its URL."""
    process = subprocess.Popen([sys.executable, "-m", "gptkit", "serve", "--port", "0", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    line = process.stdout.readline()
    if "http://" not in line:
        process.kill()
        raise RuntimeError(f"gptkit serve did not start: {line}{process.stderr.read()}")
    return Server(line.split()[-1], process)


def stop_server(server: Server) -> tuple[int, str]:
    """SIGTERM, and the exit status and stderr once it has drained."""
    server.process.terminate()
    _, err = server.process.communicate(timeout=60)
    return server.process.returncode, err


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
    """A plain LM that never emits end-of-text (context 512), and a dialogue model with its MMI model."""
    root = tmp_path_factory.mktemp("serve_models")
    return {"lm": save_model(root / "lm", 0, block_size=512, eot=False),
            "chat": save_model(root / "chat", 1), "mmi": save_model(root / "chat-mmi", 2)}
