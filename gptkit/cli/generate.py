"""`gptkit generate`: sample from any checkpoint, streaming to the terminal."""

from __future__ import annotations

import sys

import click

from gptkit.cli.group import cli


def _precision_options(command, exact: bool):
    """--dtype and --quantize, whose help says what ``auto`` picks (gptkit.inference.precision)."""
    quantize, dtype = (("none, also on the CPU: results are fp32's", "fp32 on every device")
                       if exact else ("int8 on the CPU, none on GPUs", "bf16 on CUDA, fp32 on CPUs"))
    command = click.option("--quantize", type=click.Choice(["auto", "none", "int8", "int4"]), default="auto",
                           show_default=True, help=f"int8 or int4 weights (CPU). auto: {quantize}.")(command)
    return click.option("--dtype", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
                        help=f"Model precision. auto: {dtype}.")(command)


def precision_options(command):
    """What every command that runs a model for inference takes (``auto``: the fastest good precision)."""
    return _precision_options(command, exact=False)


def exact_precision_options(command):
    """The same for commands whose outputs are results (eval) or must not depend on a batch (serve):
    ``auto`` is plain fp32; pass them ``exact=True`` in load_for_inference."""
    return _precision_options(command, exact=True)


def load_for_inference(model_dir: str, device: str, dtype: str, quantize: str, exact: bool = False):
    """gptkit.load in the precision --dtype/--quantize pick, saying which (one log line).
    ``exact``: scores are the result (eval), so ``auto`` keeps fp32."""
    import logging

    import gptkit
    from gptkit.device import resolve_device
    from gptkit.inference.precision import describe, pick_precision
    from gptkit.model.quantize import use_onednn

    where = resolve_device(device)
    torch_dtype, quantization = pick_precision(where, dtype, quantize, exact)
    chosen = f"auto on {where.type}; --dtype/--quantize change it" if "auto" in (dtype, quantize) else "as asked"
    logging.getLogger("gptkit").info("running %s in %s (%s)", model_dir, describe(torch_dtype, quantization), chosen)
    model, tokenizer = gptkit.load(model_dir, device=where, dtype=torch_dtype, quantize=quantization)
    return use_onednn(model), tokenizer  # fp32 on the CPU: oneDNN's matmul, same weights (gptkit.model.quantize)


@cli.command()
@click.option("--model", "model_dir", required=True, help="A model directory or a training run directory.")
@click.option("--prompt", default="", help="Text to continue (default: start from end-of-text).")
@click.option("--max-new-tokens", type=int, default=200, show_default=True)
@click.option("--temperature", type=float, default=0.8, show_default=True, help="0 means greedy.")
@click.option("--greedy", is_flag=True, help="Always take the most likely token (same as --temperature 0).")
@click.option("--top-k", type=int, default=None)
@click.option("--top-p", type=float, default=None)
@click.option("--repetition-penalty", type=float, default=1.0, show_default=True)
@click.option("--seed", type=int, default=None)
@click.option("--num-samples", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--no-stop", is_flag=True, help="Keep going past the end-of-text token.")
@click.option("--device", default="auto", show_default=True)
@precision_options
def generate(model_dir, prompt, greedy, num_samples, no_stop, device, dtype, quantize, **sampling) -> None:
    """Sample from a checkpoint, streaming the text to the terminal."""
    from gptkit.inference.sampling import SamplingConfig, offset_seed

    if greedy:
        sampling["temperature"] = 0.0
    sampling["stop_at_eot"] = not no_stop
    SamplingConfig(**sampling)  # a bad setting fails before the model loads
    model, tokenizer = load_for_inference(model_dir, device, dtype, quantize)
    tokenizer.warn_unknown(prompt)
    seed = sampling.pop("seed")
    for i in range(num_samples):
        if num_samples > 1:
            click.echo(f"\n--- sample {i + 1} ---")
        stream_sample(model, tokenizer, prompt, dict(sampling, seed=offset_seed(seed, i)))


def stream_sample(model, tokenizer, prompt: str, sampling: dict) -> None:
    from gptkit.inference import SamplingConfig, generate_stream

    click.echo(prompt, nl=False)
    for piece in generate_stream(model, tokenizer, tokenizer.encode(prompt), SamplingConfig(**sampling)):
        click.echo(piece, nl=False)
        sys.stdout.flush()
    click.echo()
