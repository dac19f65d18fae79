"""`gptkit convert` and `gptkit export`: published checkpoints in, Hugging Face directories out."""

from __future__ import annotations

import click

from gptkit.cli.group import cli

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@cli.command()
@click.option("--model", "source", required=True,
              help="A Hugging Face checkpoint directory, or a name in the local HF cache (gpt2, microsoft/DialoGPT-medium).")
@click.option("--out", required=True, help="Directory for the gptkit checkpoint.")
@click.option("--dtype", type=click.Choice(list(DTYPES)), default=None, help="Store the weights in this precision.")
def convert(source, out, dtype) -> None:
    """Convert a published checkpoint (GPT-2, GPT-1, DialoGPT) to gptkit's format."""
    from gptkit.run_dir import check_output, owned

    check_output(out, "model", [source])  # a refusal comes before PyTorch loads
    import torch

    import gptkit

    model, tokenizer = gptkit.load(source, dtype=getattr(torch, DTYPES[dtype]) if dtype else None)
    with owned(out):
        model.save_pretrained(out, tokenizer)
    click.echo(f"wrote {out}: {model.num_parameters():,} parameters, {model.config.ln_order}-LN, "
               f"vocabulary {tokenizer.vocab_size:,}")


@cli.command()
@click.option("--model", "source", required=True, help="A gptkit model or run directory.")
@click.option("--format", "fmt", type=click.Choice(["hf"]), default="hf", show_default=True,
              help="hf: transformers' GPT2LMHeadModel / OpenAIGPTLMHeadModel with its tokenizer.")
@click.option("--out", required=True, help="Directory to write.")
def export(source, fmt, out) -> None:
    """Export a model for other libraries (transformers: AutoModelForCausalLM, AutoTokenizer, pipeline)."""
    from gptkit.run_dir import check_output, owned

    check_output(out, "hf-model", [source])  # a refusal comes before PyTorch loads
    from gptkit.checkpoint import load
    from gptkit.convert import export_hf

    # A model saved without a tokenizer (model.save_pretrained(dir)) still exports its weights.
    model, tokenizer = load(source, require_tokenizer=False)
    with owned(out):
        export_hf(model, tokenizer, out)  # the one format so far
    click.echo(f"wrote {out} ({fmt} format, {model.num_parameters():,} parameters, {model.config.ln_order}-LN)")
