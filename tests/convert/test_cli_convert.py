"""`gptkit convert` / `export` and model names resolved in a (real, on-disk) Hugging Face cache laid
out as huggingface_hub writes it: in process with the hub's cache setting pointing at it, and once as
a real process with HF_HUB_CACHE set."""

import os
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner
from huggingface_hub import constants
from transformers import GPT2Config, GPT2LMHeadModel

from gptkit import GPT, Tokenizer
from gptkit.cli.main import cli

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


@pytest.fixture
def gptkit(hf_cache, monkeypatch):
    """`gptkit ARGS` in process, the hub's cache being ``hf_cache`` as HF_HUB_CACHE would make it."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return lambda *args: CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_convert_a_model_name_from_the_local_cache_then_sample(gptkit, tmp_path):
    result = gptkit("convert", "--model", "gpt2", "--out", str(tmp_path / "g"))
    assert result.exit_code == 0, result.output
    assert "pre-LN" in result.stdout and "vocabulary 50,257" in result.stdout
    sample = gptkit("generate", "--model", str(tmp_path / "g"), "--prompt", "Hello", "--max-new-tokens", "5", "--greedy")
    assert sample.exit_code == 0 and sample.stdout.startswith("Hello"), sample.output


def test_generate_straight_from_a_cached_name(gptkit):
    result = gptkit("generate", "--model", "openai-community/gpt2", "--prompt", "Hi", "--max-new-tokens", "3")
    assert result.exit_code == 0, result.output


def test_a_name_missing_from_the_cache_says_what_to_download(hf_cache):
    # A real process: the cache that HF_HUB_CACHE names in the environment is the one searched and named.
    env = {**os.environ, "HF_HUB_CACHE": str(hf_cache), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "gptkit", "generate", "--model", "microsoft/DialoGPT-medium"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "hf download microsoft/DialoGPT-medium config.json model.safetensors vocab.json merges.txt" in result.stderr
    assert str(hf_cache) in result.stderr


def test_dialogpt_short_name_points_at_microsoft(gptkit):
    result = gptkit("info", "--model", "dialogpt-small")
    assert result.exit_code == 2 and "microsoft/DialoGPT-small" in result.stderr


def test_export_then_load_in_transformers(gptkit, tmp_path):
    assert gptkit("convert", "--model", "gpt2", "--out", str(tmp_path / "g")).exit_code == 0
    result = gptkit("export", "--model", str(tmp_path / "g"), "--format", "hf", "--out", str(tmp_path / "hf"))
    assert result.exit_code == 0, result.output
    hf = GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()
    ours = GPT.from_pretrained(tmp_path / "g")
    x = torch.randint(0, 50257, (1, 12))
    with torch.no_grad():
        torch.testing.assert_close(hf(x).logits, ours(x), atol=1e-4, rtol=1e-4)


def test_info_reads_a_cached_hugging_face_config(gptkit):
    result = gptkit("info", "--model", "gpt2", "--json")
    assert result.exit_code == 0, result.output
    assert '"n_layer": 2' in result.stdout and '"ln_order": "pre"' in result.stdout


def test_gpt_from_pretrained_reads_names_hugging_face_and_native_directories_alike(gptkit, hf_cache, tmp_path):
    # The class method transformers and nanoGPT users reach for first: one loader behind every layout.
    (snapshot,) = (hf_cache / "models--openai-community--gpt2" / "snapshots").iterdir()
    reference = GPT2LMHeadModel.from_pretrained(snapshot).eval()
    x = torch.randint(0, 50257, (2, 16))
    with torch.no_grad():
        expected = reference(x).logits
    by_name = GPT.from_pretrained("gpt2")
    torch.testing.assert_close(by_name(x), expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(GPT.from_pretrained(snapshot)(x), expected, atol=1e-4, rtol=1e-4)
    by_name.save_pretrained(tmp_path / "native")
    native = GPT.from_pretrained(tmp_path / "native", dtype=torch.bfloat16)
    assert native.wte.weight.dtype == torch.bfloat16 and not native.training
    for name, weight in by_name.state_dict().items():
        assert torch.equal(native.state_dict()[name], weight.bfloat16()), name
