"""`gptkit info`: shapes, parameter counts, memory and FLOPs, counted on the meta device."""

from __future__ import annotations

import json

import click

from gptkit.cli.group import cli
from gptkit.errors import GptkitError


@cli.command()
@click.option("--preset", help="A preset name.")
@click.option("--model", "model_dir", help="A model directory or a training run directory.")
@click.option("--recipe", help="A paper's training recipe by name (gpt1, gpt2, gpt3-125M ... gpt3-175B, dialogpt).")
@click.option("--list", "list_presets", is_flag=True, help="List the presets with their sizes.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(preset, model_dir, recipe, list_presets, as_json) -> None:
    """Describe a preset or a checkpoint (shape, parameter count, memory, FLOPs; no weights
    allocated), or a paper's training recipe."""
    # PyTorch (seconds to import) only once there is a model to count: a recipe, or a preset name
    # that does not exist, is answered without it.
    from gptkit.config import PRESETS, GPTConfig

    if list_presets:
        from gptkit.model import count_parameters

        for name, cfg in PRESETS.items():
            click.echo(f"{name:18s} {_human(count_parameters(cfg)):>7s}  {cfg.n_layer:3d} layers x {cfg.n_embd:5d}, "
                       f"{cfg.n_head:3d} heads, context {cfg.block_size}, {cfg.ln_order}-LN, {cfg.attention}")
        return
    if recipe and not (preset or model_dir):
        _recipe(recipe, as_json)
        return
    if bool(preset) + bool(model_dir) + bool(recipe) != 1:
        raise GptkitError("give exactly one of --preset NAME, --model DIR or --recipe NAME (or --list)")
    if preset:
        cfg = GPTConfig.preset(preset)
    else:
        from gptkit.checkpoint import load_config

        cfg = load_config(model_dir)
    from gptkit.model import count_parameters, flops_per_token
    from gptkit.model.gpt import attention_flops_per_token, kv_cache_bytes

    n = count_parameters(cfg)
    report = {"name": preset or str(model_dir), **cfg.to_dict(), "parameters": n,
              "fp32_bytes": 4 * n, "bf16_bytes": 2 * n, "train_flops_per_token": flops_per_token(cfg),
              "attention_flops_per_token": attention_flops_per_token(cfg), "kv_cache_fp32_bytes": kv_cache_bytes(cfg)}
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
               f"  training FLOPs per token: {report['train_flops_per_token']:.3e}, of which attention: "
               + ", ".join(f"{v:.3e} in {k} layers" for k, v in report["attention_flops_per_token"].items()) + "\n"
               f"  KV cache of one {cfg.block_size}-token sequence in fp32: "
               + ", ".join(f"{v / 2**20:,.1f} MiB in {k} layers" for k, v in report["kv_cache_fp32_bytes"].items()))


def _recipe(name: str, as_json: bool) -> None:
    """A recipe's numbers as the paper gives them, and in steps of its own batch."""
    import dataclasses

    from gptkit.recipes import find_recipe

    name, r = find_recipe(name)
    batch = r.sequences(r.block_size)
    tokens = batch * r.block_size
    steps = r.steps(tokens)
    if as_json:
        click.echo(json.dumps({"name": name, **dataclasses.asdict(r), "batch_size": batch, "tokens_per_step": tokens,
                               **steps}, indent=2))
        return
    warmup = (f"{r.warmup_steps:,} steps" if r.warmup_steps
              else f"{r.warmup_tokens / 1e6:,.0f}M tokens ({steps['warmup_steps']:,} steps)")
    end = f"{r.min_lr_ratio * r.lr:.3g} ({r.min_lr_ratio:.0%} of the peak)" if r.min_lr_ratio else "0"
    if r.schedule == "noam":
        decay = "then lr x sqrt(warmup / step) (Noam)"
    elif r.decay_tokens:
        decay = (f"cosine decay to {end} over {r.decay_tokens / 1e9:,.0f}B tokens ({steps['decay_steps']:,} steps), "
                 "then constant")
    else:
        decay = f"cosine decay to {end} over the run"
    run = r.length() + (f" ({steps['max_steps']:,} steps)" if steps["max_steps"] else "")
    lines = [f"{name}: {r.source}",
             f"  command:       gptkit {r.command} --recipe {name}",
             f"  model:         the {r.preset} preset (gptkit info --preset {r.preset})",
             f"  context:       {r.block_size:,} tokens",
             f"  batch:         {batch:,} sequences x {r.block_size:,} = {tokens:,} tokens a step",
             f"  optimizer:     Adam, beta1 {r.beta1}, beta2 {r.beta2}, eps {r.eps:g}; weight decay {r.weight_decay} "
             f"(not on biases and gains); gradient clipping {r.grad_clip}",
             f"  learning rate: {r.lr:.3g} after a linear warmup over {warmup}, {decay}",
             f"  run:           {run}",
             f"  dropout:       {r.dropout}",
             *(f"  note:          {note}" for note in r.notes),
             "  steps are of this batch; with --batch-size, --grad-accum or --block-size they follow the batch used"]
    click.echo("\n".join(lines))


def _human(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)
