"""The `gptkit` command: parse flags, call the library, print. No logic the Python API lacks."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from gptkit.errors import GptkitError


class Group(click.Group):
    """Turns GptkitError into a one-line message and exit status 2, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GptkitError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(2)
        except OSError as e:  # a path that cannot be read or written: name it, no traceback
            where = f": {e.filename}" if e.filename else ""
            click.echo(f"error: {e.strerror or e}{where}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            ctx.exit(130)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="gptkit")
def cli() -> None:
    """gptkit: pretrain, sample from and inspect GPT-family models.

    Run `gptkit pretrain` with no arguments to train a small model on the bundled Shakespeare.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    logging.getLogger("gptkit").setLevel(logging.INFO)  # our own notes; other libraries' only from warnings up


# --- pretrain -------------------------------------------------------------------------------------

@cli.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML or TOML file of TrainConfig keys; flags override it.")
@click.option("--preset", help="Model shape by name (see `gptkit info --list`). Default: shakespeare-char.")
@click.option("--data", help="A directory made by `gptkit prepare`. Default: the bundled Shakespeare.")
@click.option("--tokenizer", help="For the bundled corpus: char (default), gpt2, or a tokenizer directory.")
@click.option("--out", help="Run directory for checkpoints, metrics and the loss curve. Default: runs/shakespeare.")
@click.option("--init-from", help="Start from the weights of this model directory instead of random ones.")
@click.option("--max-steps", type=int)
@click.option("--batch-size", type=int)
@click.option("--block-size", type=int, help="Context length of the training windows.")
@click.option("--grad-accum", type=int, help="Micro-batches accumulated per optimizer step.")
@click.option("--lr", type=float, help="Peak learning rate (after warmup, before cosine decay).")
@click.option("--min-lr", type=float)
@click.option("--warmup-steps", type=int)
@click.option("--weight-decay", type=float)
@click.option("--grad-clip", type=float)
@click.option("--dropout", type=float)
@click.option("--seed", type=int)
@click.option("--device", help="auto, cpu, cuda, cuda:1, mps.")
@click.option("--dtype", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), help="Autocast precision.")
@click.option("--compile/--no-compile", default=None, help="torch.compile the model.")
@click.option("--eval-every", type=int, help="Validation loss every N steps (0: only at the end).")
@click.option("--eval-batches", type=int)
@click.option("--save-every", type=int, help="Checkpoint every N steps (and always at the end).")
@click.option("--sample-tokens", type=int, help="Length of the sample printed at the end (0: none).")
@click.option("--resume", is_flag=True, default=None, help="Continue the run in --out from its newest checkpoint.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def pretrain(config_file, quiet, **flags) -> None:
    """Pretrain with the language-model objective L1 (next-token cross-entropy)."""
    import dataclasses

    from gptkit.train import TrainConfig
    from gptkit.train import pretrain as run

    keys: dict = {}
    out = flags.get("out") or TrainConfig.out
    if flags.get("resume"):
        saved = Path(out) / "train_config.json"
        if not saved.is_file():
            raise GptkitError(f"--resume: {out} holds no checkpoint to resume from (no train_config.json)")
        keys.update(json.loads(saved.read_text(encoding="utf-8")))
    if config_file:
        keys.update(TrainConfig.from_file(config_file))
    keys.update({k: v for k, v in flags.items() if v is not None})
    cfg = TrainConfig(**{f.name: keys[f.name] for f in dataclasses.fields(TrainConfig) if f.name in keys})
    result = run(cfg, progress=not quiet)
    click.echo(f"\ntrained {result.steps} steps; validation loss {_fmt(result.val_loss)} nats/token "
               f"(unigram baseline {_fmt(result.unigram_baseline)})")
    click.echo(f"model: {cfg.out}   loss curve: {result.loss_curve}")
    if cfg.sample_tokens:
        click.echo("\n--- sample ---")
        _stream_sample(result.trainer.model, result.trainer.tokenizer, "\n",
                       dict(max_new_tokens=cfg.sample_tokens, temperature=0.8, top_k=40, seed=cfg.seed))


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


# --- generate -------------------------------------------------------------------------------------

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
@click.option("--num-samples", type=int, default=1, show_default=True)
@click.option("--no-stop", is_flag=True, help="Keep going past the end-of-text token.")
@click.option("--device", default="auto", show_default=True)
def generate(model_dir, prompt, greedy, num_samples, no_stop, device, **sampling) -> None:
    """Sample from a checkpoint, streaming the text to the terminal."""
    import gptkit
    from gptkit.train.trainer import resolve_device

    model, tokenizer = gptkit.load(model_dir, device=resolve_device(device))
    if greedy:
        sampling["temperature"] = 0.0
    sampling["stop_at_eot"] = not no_stop
    seed = sampling.pop("seed")
    for i in range(num_samples):
        if num_samples > 1:
            click.echo(f"\n--- sample {i + 1} ---")
        _stream_sample(model, tokenizer, prompt, dict(sampling, seed=None if seed is None else seed + i))


def _stream_sample(model, tokenizer, prompt: str, sampling: dict) -> None:
    from gptkit.inference import SamplingConfig, generate_stream

    click.echo(prompt, nl=False)
    for piece in generate_stream(model, tokenizer, tokenizer.encode(prompt), SamplingConfig(**sampling)):
        click.echo(piece, nl=False)
        sys.stdout.flush()
    click.echo()


# --- prepare --------------------------------------------------------------------------------------

@cli.command()
@click.option("--input", "inputs", multiple=True, required=True,
              help="Text files, .jsonl files (field 'text'), directories or globs; repeatable. 'shakespeare' is the bundled corpus.")
@click.option("--tokenizer", default="gpt2", show_default=True, help="gpt2, char, or a tokenizer directory.")
@click.option("--out", required=True, help="Directory for the shards, meta.json and the tokenizer.")
@click.option("--val-fraction", type=float, default=0.05, show_default=True, help="Share of documents held out for validation.")
@click.option("--workers", type=int, default=None, help="Tokenizer processes (default: all cores).")
@click.option("--shard-tokens", type=int, default=100_000_000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def prepare(inputs, tokenizer, out, val_fraction, workers, shard_tokens, seed) -> None:
    """Tokenize text into token shards for pretraining."""
    import os

    from gptkit.data import prepare_files
    from gptkit.data.prepare import iter_texts
    from gptkit.train.pretrain import make_tokenizer, prepare_bundled_shakespeare

    if list(inputs) == ["shakespeare"] and not Path("shakespeare").exists():
        prepare_bundled_shakespeare(Path(out), tokenizer)
    else:
        texts = list(iter_texts(list(inputs))) if tokenizer == "char" else []
        tok = make_tokenizer(tokenizer, texts)
        prepare_files(list(inputs), tok, out, val_fraction=val_fraction, seed=seed,
                      workers=workers or os.cpu_count() or 1, shard_tokens=shard_tokens)
    meta = json.loads((Path(out) / "meta.json").read_text(encoding="utf-8"))
    for split, info in meta["splits"].items():
        click.echo(f"{split}: {info['documents']:,} documents, {info['tokens']:,} tokens in {len(info['shards'])} shard(s)")
    click.echo(f"wrote {out} ({meta['dtype']}, vocabulary {meta['vocab_size']:,})")


# --- tokenizer ------------------------------------------------------------------------------------

@cli.group()
def tokenizer() -> None:
    """Train or try out tokenizers."""


@tokenizer.command("train")
@click.option("--input", "inputs", multiple=True, required=True, help="Text/.jsonl files, directories or globs; repeatable.")
@click.option("--vocab-size", type=int, required=True)
@click.option("--min-frequency", type=int, default=2, show_default=True)
@click.option("--out", required=True, help="Directory for vocab.json, merges.txt and tokenizer_config.json.")
def tokenizer_train(inputs, vocab_size, min_frequency, out) -> None:
    """Learn a byte-level BPE vocabulary from your own text."""
    from gptkit.data.prepare import iter_texts
    from gptkit.tokenizer import Tokenizer

    tok = Tokenizer.train_bpe(iter_texts(list(inputs)), vocab_size, min_frequency)
    tok.save(out)
    click.echo(f"trained a byte-level BPE of {tok.vocab_size:,} tokens; wrote {out}")


@tokenizer.command("encode")
@click.option("--tokenizer", "spec", default="gpt2", show_default=True, help="gpt2 or a tokenizer directory.")
@click.argument("text")
def tokenizer_encode(spec, text) -> None:
    """Show the token ids and pieces of TEXT."""
    from gptkit.train.pretrain import make_tokenizer

    tok = make_tokenizer(spec, [text])
    ids = tok.encode(text)
    click.echo(json.dumps(ids))
    click.echo(" | ".join(repr(tok.decode([i])) for i in ids))


# --- convert / export ----------------------------------------------------------------------------

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@cli.command()
@click.option("--model", "source", required=True,
              help="A Hugging Face checkpoint directory, or a name in the local HF cache (gpt2, microsoft/DialoGPT-medium).")
@click.option("--out", required=True, help="Directory for the gptkit checkpoint.")
@click.option("--dtype", type=click.Choice(list(DTYPES)), default=None, help="Store the weights in this precision.")
def convert(source, out, dtype) -> None:
    """Convert a published checkpoint (GPT-2, GPT-1, DialoGPT) to gptkit's format."""
    import torch

    import gptkit

    model, tokenizer = gptkit.load(source, dtype=getattr(torch, DTYPES[dtype]) if dtype else None)
    model.save_pretrained(out, tokenizer)
    click.echo(f"wrote {out}: {model.num_parameters():,} parameters, {model.config.ln_order}-LN, "
               f"vocabulary {tokenizer.vocab_size:,}")


@cli.command()
@click.option("--model", "source", required=True, help="A gptkit model or run directory.")
@click.option("--format", "fmt", type=click.Choice(["hf"]), default="hf", show_default=True)
@click.option("--out", required=True, help="Directory to write.")
def export(source, fmt, out) -> None:
    """Export a model for other libraries (hf: transformers' GPT2LMHeadModel / OpenAIGPTLMHeadModel)."""
    import gptkit
    from gptkit.convert import export_hf

    model, tokenizer = gptkit.load(source)
    export_hf(model, tokenizer, out)
    click.echo(f"wrote {out} ({'OpenAIGPTLMHeadModel' if model.config.ln_order == 'post' else 'GPT2LMHeadModel'})")


# --- info -----------------------------------------------------------------------------------------

@cli.command()
@click.option("--preset", help="A preset name.")
@click.option("--model", "model_dir", help="A model directory or a training run directory.")
@click.option("--list", "list_presets", is_flag=True, help="List the presets with their sizes.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(preset, model_dir, list_presets, as_json) -> None:
    """Describe a preset or a checkpoint: shape, parameter count, memory, FLOPs (no weights allocated)."""
    from gptkit.checkpoint import load_config
    from gptkit.config import PRESETS, GPTConfig
    from gptkit.model import count_parameters, flops_per_token

    if list_presets:
        for name, cfg in PRESETS.items():
            click.echo(f"{name:18s} {_human(count_parameters(cfg)):>7s}  {cfg.n_layer:3d} layers x {cfg.n_embd:5d}, "
                       f"{cfg.n_head:3d} heads, context {cfg.block_size}, {cfg.ln_order}-LN, {cfg.attention}")
        return
    if bool(preset) == bool(model_dir):
        raise GptkitError("give exactly one of --preset NAME or --model DIR (or --list)")
    cfg = GPTConfig.preset(preset) if preset else load_config(model_dir)
    n = count_parameters(cfg)
    report = {"name": preset or str(model_dir), **cfg.to_dict(), "parameters": n,
              "fp32_bytes": 4 * n, "bf16_bytes": 2 * n, "train_flops_per_token": flops_per_token(cfg)}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    attention = "dense" if cfg.attention == "dense" else f"alternating dense / banded (window {cfg.local_window})"
    click.echo(f"{report['name']}\n"
               f"  {cfg.n_layer} layers, width {cfg.n_embd}, {cfg.n_head} heads of {cfg.head_dim}, "
               f"context {cfg.block_size}, vocabulary {cfg.vocab_size:,}\n"
               f"  {cfg.ln_order}-LayerNorm, {attention} attention, {cfg.position} positions\n"
               f"  parameters: {n:,} ({_human(n)})\n"
               f"  weights: {4 * n / 2**30:,.2f} GiB in fp32, {2 * n / 2**30:,.2f} GiB in bf16\n"
               f"  training FLOPs per token: {report['train_flops_per_token']:.3e}")


def _human(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


# Commands defined in their capability's own module register themselves on `cli` when imported.
# (one import line per module below this comment)
from gptkit.cli import chat as _chat  # noqa: E402,F401
from gptkit.cli import eval as _eval  # noqa: E402,F401
from gptkit.cli import finetune as _finetune  # noqa: E402,F401


def main() -> None:
    cli(prog_name="gptkit")
