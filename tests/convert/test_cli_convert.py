"""`gptkit convert` / `export` and model names resolved in a (real, on-disk) Hugging Face cache,
run as real processes with HF_HUB_CACHE pointing at a cache laid out as huggingface_hub writes it."""

import os
import subprocess
import sys

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from gptkit import GPT, Tokenizer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("hf_cache")
    repo = cache / "models--openai-community--gpt2"
    snapshot = repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=128)).save_pretrained(snapshot)
    Tokenizer.gpt2().save(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(snapshot.name)
    return cache


def gptkit(*args, cache):
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "gptkit", *args], capture_output=True, text=True, env=env)


def test_convert_a_model_name_from_the_local_cache_then_sample(hf_cache, tmp_path):
    result = gptkit("convert", "--model", "gpt2", "--out", str(tmp_path / "g"), cache=hf_cache)
    assert result.returncode == 0, result.stderr
    assert "pre-LN" in result.stdout and "vocabulary 50,257" in result.stdout
    sample = gptkit("generate", "--model", str(tmp_path / "g"), "--prompt", "Hello", "--max-new-tokens", "5",
                    "--greedy", cache=hf_cache)
    assert sample.returncode == 0 and sample.stdout.startswith("Hello"), sample.stderr


def test_generate_straight_from_a_cached_name(hf_cache):
    result = gptkit("generate", "--model", "openai-community/gpt2", "--prompt", "Hi", "--max-new-tokens", "3",
                    cache=hf_cache)
    assert result.returncode == 0, result.stderr


def test_a_name_missing_from_the_cache_says_what_to_download(hf_cache):
    result = gptkit("generate", "--model", "microsoft/DialoGPT-medium", cache=hf_cache)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "hf download microsoft/DialoGPT-medium config.json model.safetensors vocab.json merges.txt" in result.stderr
    assert str(hf_cache) in result.stderr


def test_dialogpt_short_name_points_at_microsoft(hf_cache):
    result = gptkit("info", "--model", "dialogpt-small", cache=hf_cache)
    assert result.returncode == 2 and "microsoft/DialoGPT-small" in result.stderr


def test_export_then_load_in_transformers(hf_cache, tmp_path):
    assert gptkit("convert", "--model", "gpt2", "--out", str(tmp_path / "g"), cache=hf_cache).returncode == 0
    result = gptkit("export", "--model", str(tmp_path / "g"), "--format", "hf", "--out", str(tmp_path / "hf"), cache=hf_cache)
    assert result.returncode == 0, result.stderr
    hf = GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()
    ours = GPT.from_pretrained(tmp_path / "g")
    x = torch.randint(0, 50257, (1, 12))
    with torch.no_grad():
        torch.testing.assert_close(hf(x).logits, ours(x), atol=1e-4, rtol=1e-4)


def test_info_reads_a_cached_hugging_face_config(hf_cache):
    result = gptkit("info", "--model", "gpt2", "--json", cache=hf_cache)
    assert result.returncode == 0, result.stderr
    assert '"n_layer": 2' in result.stdout and '"ln_order": "pre"' in result.stdout
