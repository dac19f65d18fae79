"""Decoding fast: int8, int4 and bf16 against fp32 on a trained model, rows that finish leaving the batch,
and the --dtype / --quantize flags."""

import logging

import pytest
import torch
import torch.nn as nn
from click.testing import CliRunner

import gptkit
from gptkit import GptkitError
from gptkit.cli.main import cli
from gptkit.data import shakespeare_splits
from gptkit.eval import perplexity
from gptkit.inference import SamplingConfig, generate_ids
from gptkit.inference.precision import pick_precision
from gptkit.model.quantize import Int8Linear, int4_supported, int8_supported
from tests.cli.test_cli import assert_clean_error

INT8 = pytest.mark.skipif(not int8_supported(), reason="int8 needs fbgemm (x86)")
INT4 = pytest.mark.skipif(not (int8_supported() and int4_supported()), reason="int4 needs PyTorch's CPU int4 kernel")
# each with the perplexity change it may cost on the held-out play (int4: issue 20's bound)
LOW_PRECISION = {"bf16": (dict(dtype=torch.bfloat16), 0.01), "int8": pytest.param(dict(quantize="int8"), 0.01, marks=INT8),
                 "int4": pytest.param(dict(quantize="int4"), 0.03, marks=INT4)}


@INT8
def test_int8_linear_is_close_to_the_fp32_layer():
    torch.manual_seed(0)
    layer = nn.Linear(64, 48)
    x = torch.randn(5, 7, 64)
    exact, int8 = layer(x), Int8Linear(layer.weight, layer.bias)
    assert (int8(x) - exact).norm() / exact.norm() < 0.02
    with pytest.raises(GptkitError, match="cannot be saved"):  # it holds no fp32 weights to save
        int8.state_dict()


@pytest.fixture(scope="module")
def held_out(trained_tiny) -> tuple[str, list[int]]:
    """A held-out play's opening (text), and its tokens for the trained model."""
    text = shakespeare_splits()["val"][0].text[:12_000]
    return text, gptkit.load(trained_tiny)[1].encode(text)


@INT8
def test_int8_on_activations_that_overflow_is_one_error_not_fbgemms():
    # What a diverged run's last finite checkpoint can hold: weights so large the activations overflow.
    layer = Int8Linear(torch.ones(4, 8), None)
    with pytest.raises(GptkitError, match="weights have diverged.*earlier checkpoint"):
        layer(torch.full((2, 8), float("nan")))
    assert torch.isfinite(layer(torch.ones(2, 8))).all()


@pytest.mark.parametrize("precision, cost", list(LOW_PRECISION.values()), ids=list(LOW_PRECISION))
def test_low_precision_keeps_perplexity_and_greedy_choices(trained_tiny, held_out, precision, cost):
    text, ids = held_out
    exact, tok = gptkit.load(trained_tiny)
    fast, _ = gptkit.load(trained_tiny, **precision)
    ppl = [perplexity(m, tok, text, batch_size=32)["perplexity"] for m in (exact, fast)]
    assert abs(ppl[1] / ppl[0] - 1) <= cost, ppl
    with torch.inference_mode():  # the most likely next token at every position of the play's opening
        windows = torch.tensor(ids[: 64 * 30]).view(30, 64)
        agree = (exact(windows).argmax(-1) == fast(windows).argmax(-1)).float().mean()
    assert agree >= 0.95 - 5 * (cost - 0.01)  # int4: 0.85
    prompts = [ids[i: i + 20] for i in range(0, 2000, 200)]
    cfg = SamplingConfig(max_new_tokens=20, temperature=0, stop_at_eot=False)
    same = sum(a == b for a, b in zip(generate_ids(exact, prompts, cfg, tok.eot_id), generate_ids(fast, prompts, cfg, tok.eot_id)))
    assert same >= len(prompts) // 2  # whole continuations; one flipped near-tie changes the rest of a row


@INT8
def test_auto_precision_is_fast_where_it_keeps_quality():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert pick_precision(cpu) == (torch.float32, "int8")
    assert pick_precision(cpu, exact=True) == (torch.float32, None)
    assert pick_precision(cpu, "bf16") == (torch.bfloat16, None)
    assert pick_precision(cpu, quantize="none") == (torch.float32, None)
    assert pick_precision(cpu, quantize="int4") == (torch.float32, "int4")
    assert pick_precision(cpu, "fp32", "int4", exact=True) == (torch.float32, "int4")  # asked for: eval takes it
    assert pick_precision(cuda, "fp16", "none") == (torch.float16, None)


@pytest.mark.parametrize("kind", ["int8", "int4"])
def test_a_quantization_that_cannot_run_as_asked_is_one_line_naming_the_fix(kind):
    with pytest.raises(GptkitError, match=f"--quantize {kind} runs on the CPU.*on a GPU use --quantize none"):
        pick_precision(torch.device("cuda"), "auto", kind)
    with pytest.raises(GptkitError, match="use --dtype fp32"):
        pick_precision(torch.device("cpu"), "bf16", kind)


@INT8
def test_generate_says_which_precision_it_picked(trained_tiny, caplog):
    run = CliRunner().invoke
    with caplog.at_level(logging.INFO, logger="gptkit"):
        result = run(cli, ["generate", "--model", trained_tiny, "--prompt", "O", "--max-new-tokens", "5", "--greedy"])
    assert result.exit_code == 0, result.output
    assert "fp32 with int8 weights (auto on cpu" in caplog.text
    exact = run(cli, ["generate", "--model", trained_tiny, "--prompt", "O", "--max-new-tokens", "5", "--greedy",
                      "--dtype", "fp32", "--quantize", "none"])
    assert exact.exit_code == 0 and len(exact.stdout) == len(result.stdout)
    assert_clean_error(run(cli, ["generate", "--model", trained_tiny, "--dtype", "bf16", "--quantize", "int8"]), "fp32")


@INT4
def test_generate_runs_int4_and_says_so(trained_tiny, caplog):
    run = CliRunner().invoke
    args = ["generate", "--model", trained_tiny, "--prompt", "O", "--max-new-tokens", "5", "--greedy"]
    with caplog.at_level(logging.INFO, logger="gptkit"):
        result = run(cli, [*args, "--quantize", "int4"])
    assert result.exit_code == 0, result.output
    assert "fp32 with int4 weights (auto on cpu" in caplog.text and len(result.stdout) > len("O")
    assert_clean_error(run(cli, [*args, "--dtype", "bf16", "--quantize", "int4"]), "--quantize int4", "--dtype fp32")
    wrong = run(cli, [*args, "--quantize", "int2"])
    assert wrong.exit_code == 2 and "'int8', 'int4'" in wrong.output
