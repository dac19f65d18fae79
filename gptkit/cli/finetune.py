"""`gptkit finetune` and `gptkit predict`: GPT-1's supervised fine-tuning on labelled files."""

from __future__ import annotations

import json

import click

from gptkit.cli.group import cli
from gptkit.cli.train import given, training_options


@cli.command()
@click.option("--model", "model_dir", required=True, help="The pretrained model (a model or run directory).")
@click.option("--task", type=click.Choice(["classify", "entail", "similarity", "choice"]), required=True)
@click.option("--train", "train_file", required=True, help="Labelled .jsonl, .csv or .tsv file (see docs/finetuning.md).")
@click.option("--valid", "valid_file", required=True, help="Validation file, same columns: metrics and early stopping.")
@click.option("--out", required=True, help="Directory for the best model, metrics.json and the training log.")
@click.option("--lm-coef", type=float, default=0.5, show_default=True, help="λ, weight of the auxiliary LM loss.")
@click.option("--lr", type=float, default=6.25e-5, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--epochs", type=int, default=3, show_default=True)
@click.option("--max-steps", type=int, default=None, help="Stop after this many steps even within the epochs.")
@click.option("--warmup-steps", type=int, default=None, help="Linear warmup steps (default: 0.2% of the steps, as GPT-1).")
@click.option("--clf-dropout", type=float, default=0.1, show_default=True)
@click.option("--weight-decay", type=float, default=0.01, show_default=True)
@click.option("--eval-every", type=int, default=None, help="Validate every N steps (default: once per epoch).")
@click.option("--patience", type=int, default=2, show_default=True, help="Validations without improvement before stopping.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its newest checkpoint (same flags).")
@training_options(fused_loss=False)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def finetune(model_dir, train_file, valid_file, quiet, **flags) -> None:
    """Fine-tune a pretrained model on a labelled task (L3 = L2 + λ·L1)."""
    from gptkit.finetune import FinetuneConfig
    from gptkit.finetune import finetune as run
    from gptkit.train import distributed

    report = run(FinetuneConfig(init_from=model_dir, train=train_file, valid=valid_file, **given(flags)), progress=not quiet)
    if not distributed.is_main():
        return
    best, key = report["best"], report["metric"]
    baseline = report["majority_baseline"]
    click.echo(f"best {key} {best[key]:.3f} at step {best['step']} (epoch {best['epoch']})"
               + (f"; majority-class baseline {baseline:.3f}" if baseline is not None else ""))
    click.echo(f"model and metrics.json: {flags['out']}")


@cli.command()
@click.option("--model", "model_dir", required=True, help="A directory written by `gptkit finetune`.")
@click.option("--input", "input_file", required=True, help=".jsonl, .csv or .tsv with the task's columns (labels not needed).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--device", default="auto", show_default=True)
def predict(model_dir, input_file, batch_size, device) -> None:
    """Print one JSON line per example: the prediction and the probability of each class or choice."""
    from gptkit.device import resolve_device
    from gptkit.finetune import load_task_model, read_examples
    from gptkit.finetune import predict as run

    model, tokenizer = load_task_model(model_dir, resolve_device(device))
    for result in run(model, tokenizer, read_examples(input_file, model.labels.task, labelled=False), batch_size):
        click.echo(json.dumps(result))
