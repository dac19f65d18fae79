"""`gptkit pretrain`: the language-model objective L1 on the bundled corpus or prepared shards."""

from __future__ import annotations

import click

from gptkit.cli.generate import stream_sample
from gptkit.cli.group import cli


def training_options(fused_loss: bool = True):
    """How a training command runs, the same for pretrain, finetune and dialogue train: device,
    precision, compilation, the fused loss (not for finetune, whose L1 is averaged per sequence) and,
    under torchrun, the parallelism. A flag not given is None, so the config's default (or the config
    file's or resumed run's value) stands. (The choices are TrainConfig's, which checks them again;
    written out here so `--help` does not import torch.)"""
    options = [
        click.option("--device", help="auto (default: cuda, else mps, else cpu), cpu, cuda, cuda:1, mps."),
        click.option("--dtype", type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
                     help="Autocast precision. auto (default): bf16 on GPUs that have it, fp16 on others, fp32 on CPUs."),
        click.option("--compile/--no-compile", default=None, help="torch.compile the model."),
        click.option("--compile-mode", type=click.Choice(["default", "reduce-overhead", "max-autotune",
                                                          "max-autotune-no-cudagraphs"]),
                     help="torch.compile's mode, with --compile: reduce-overhead replays each step as CUDA graphs "
                          "(small models on a GPU)."),
        click.option("--overwrite", is_flag=True, default=None,
                     help="Start afresh where --out holds a run: the old run is moved aside to OUT.old-<time>, never deleted."),
        click.option("--parallel", type=click.Choice(["ddp", "fsdp"]),
                     help="Under torchrun: ddp (default, a model replica per process) or fsdp (FSDP2 shards)."),
    ]
    if fused_loss:
        options.append(click.option("--fused-loss/--no-fused-loss", default=None,
                                    help="The loss chunk by chunk inside the model's forward, never the whole logits (default)."))

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def given(flags: dict) -> dict:
    """The flags the user gave (click's None stands for not given)."""
    return {k: v for k, v in flags.items() if v is not None}


@cli.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML or TOML file of TrainConfig keys; flags override it.")
@click.option("--preset", help="Model shape by name (see `gptkit info --list`). Default: shakespeare-char.")
@click.option("--data", multiple=True, callback=lambda _ctx, _param, dirs: (list(dirs) if len(dirs) > 1 else dirs[0]) if dirs else None,
              help="A directory made by `gptkit prepare`; repeat it to train on several (e.g. the --part directories) as one corpus. "
                   "Default: the bundled Shakespeare.")
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
@click.option("--eval-every", type=int, help="Validation loss every N steps (0: only at the end).")
@click.option("--eval-batches", type=int)
@click.option("--log-every", type=int, help="Steps between reads of the loss from the GPU (every step is logged).")
@click.option("--save-every", type=int, help="Checkpoint every N steps (and always at the end).")
@click.option("--keep-checkpoints", type=int, help="How many of the newest checkpoints to keep (default 2).")
@click.option("--sample-tokens", type=int, help="Length of the sample printed at the end (0: none).")
@click.option("--resume", is_flag=True, default=None, help="Continue the run in --out from its newest checkpoint.")
@training_options()
@click.option("--quiet", is_flag=True, help="No progress bars.")
def pretrain(config_file, quiet, **flags) -> None:
    """Pretrain with the language-model objective L1 (next-token cross-entropy)."""
    from gptkit.checkpoint import load_model
    from gptkit.train import TrainConfig, distributed
    from gptkit.train import pretrain as run

    cfg = TrainConfig.resolve(flags, config_file)
    result = run(cfg, progress=not quiet)
    if not distributed.is_main():
        return
    click.echo(f"\ntrained {result.steps} steps; validation loss {_fmt(result.val_loss)} nats/token "
               f"(unigram baseline {_fmt(result.unigram_baseline)})")
    click.echo(f"model: {cfg.out}   loss curve: {result.loss_curve}")
    if cfg.sample_tokens:
        click.echo("\n--- sample ---")
        # A torchrun job's model may be sharded over processes that have finished: sample the saved one.
        model = load_model(cfg.out, result.trainer.device) if distributed.launched_by_torchrun() else result.trainer.model
        stream_sample(model, result.trainer.tokenizer, "\n",
                       dict(max_new_tokens=cfg.sample_tokens, temperature=0.8, top_k=40, seed=cfg.seed))


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"
