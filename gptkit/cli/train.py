"""`gptkit pretrain`: the language-model objective L1 on the bundled corpus or prepared shards."""

from __future__ import annotations

import click

from gptkit.cli.generate import stream_sample
from gptkit.cli.group import cli
from gptkit.cli.options import config_options
from gptkit.train_config import TrainConfig

# The flags of how a training command runs, the same for pretrain, finetune and dialogue train.
TRAINING = ("device", "dtype", "compile", "compile_mode", "overwrite", "parallel")


def training_options(cls: type = TrainConfig, fused_loss: bool = True):
    """Device, precision, compilation, the fused loss (not for finetune, whose L1 is averaged per
    sequence) and, under torchrun, the parallelism."""
    return config_options(cls, *TRAINING, *(("fused_loss",) if fused_loss else ()))


def config_file_option(cls: type = TrainConfig):
    """--config: a YAML or TOML file of the command's config keys, which given flags override."""
    return click.option("--config", "config_file", type=click.Path(dir_okay=False),
                        help=f"YAML or TOML file of {cls.__name__} keys (docs/pretraining.md); flags override it.")


@cli.command()
@config_file_option()
@config_options(TrainConfig, "preset", "recipe", "data", "tokenizer", "out", "init_from", "max_steps", "batch_size",
                "batch_ramp", "batch_ramp_start", "block_ramp", "block_ramp_start",
                "block_size", "grad_accum", "optimizer", "lr", "muon_lr", "muon_momentum", "min_lr", "warmup_steps", "decay_steps",
                "schedule", "weight_decay", "beta1", "beta2", "grad_clip", "dropout",
                "seed", "eval_every", "eval_batches", "log_every", "save_every", "keep_checkpoints", "sample_tokens",
                "resume")
@training_options()
@click.option("--quiet", is_flag=True, help="No progress bars.")
def pretrain(config_file, quiet, **flags) -> None:
    """Pretrain with the language-model objective L1 (next-token cross-entropy)."""
    cfg = TrainConfig.resolve(flags, config_file)
    cfg.check_out()
    from gptkit.checkpoint import load_model
    from gptkit.train import distributed
    from gptkit.train import pretrain as run

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
