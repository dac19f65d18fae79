"""`gptkit finetune` and `gptkit predict`: GPT-1's supervised fine-tuning on labelled files."""

from __future__ import annotations

import json
from collections import Counter

import click

from gptkit.cli.group import cli
from gptkit.cli.options import config_options
from gptkit.cli.train import config_file_option, training_options
from gptkit.train_config import FinetuneConfig


@cli.command()
@config_file_option(FinetuneConfig)
@config_options(FinetuneConfig, "init_from", "task", "train", "valid", "out", "lm_coef", "lr", "batch_size", "epochs",
                "max_steps", "warmup_steps", "clf_dropout", "weight_decay", "eval_every", "patience", "seed", "resume")
@training_options(FinetuneConfig, fused_loss=False)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def finetune(config_file, quiet, **flags) -> None:
    """Fine-tune a pretrained model on a labelled task (L3 = L2 + λ·L1)."""
    cfg = FinetuneConfig.resolve(flags, config_file)
    cfg.check_out()
    from gptkit.finetune import finetune as run
    from gptkit.train import distributed

    report = run(cfg, progress=not quiet)
    if not distributed.is_main():
        return
    best, key = report["best"], report["metric"]
    baseline = report["majority_baseline"]
    click.echo(f"best {key} {best[key]:.3f} at step {best['step']} (epoch {best['epoch']})"
               + (f"; majority-class baseline {baseline:.3f}" if baseline is not None else ""))
    click.echo(f"model and metrics.json: {cfg.out}")


@cli.command()
@click.option("--model", "model_dir", required=True, help="A directory written by `gptkit finetune`.")
@click.option("--input", "input_file", required=True,
              help=".jsonl, .csv or .tsv with the task's columns (labels not needed), or a bundled set's name "
                   "(play, reply, speaker, nextline: its test split).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def predict(model_dir, input_file, batch_size, device, quiet) -> None:
    """Print one JSON line per example: the prediction and the probability of each class or choice.
    A progress bar and a one-line summary of the predictions go to stderr."""
    from tqdm import tqdm

    from gptkit.device import resolve_device
    from gptkit.finetune import load_task_model, read_examples
    from gptkit.finetune import predict as run
    from gptkit.finetune.tasks import task_file

    model, tokenizer = load_task_model(model_dir, resolve_device(device))
    examples = read_examples(task_file(input_file, "test"), model.labels.task, labelled=False)
    results = []
    with tqdm(total=len(examples), desc="predicting", unit="example", disable=quiet, dynamic_ncols=True) as bar:
        for i in range(0, len(examples), batch_size):  # each example's output is its own: batches are independent
            batch = examples[i: i + batch_size]
            for result in run(model, tokenizer, batch, batch_size):
                click.echo(json.dumps(result))
                results.append(result)
            bar.update(len(batch))
    click.echo(prediction_summary(results), err=True)


def prediction_summary(results: list[dict]) -> str:
    """How many examples and how the predictions spread: per class or choice, or the scores' range."""
    if results and "score" in results[0]:
        scores = [r["score"] for r in results]
        return f"{len(results)} examples; scores mean {sum(scores) / len(scores):.3f}, from {min(scores):.3f} to {max(scores):.3f}"
    counts = Counter(r["prediction"] for r in results).most_common()
    spread = ", ".join(f"{'choice ' if isinstance(label, int) else ''}{label} {n} ({n / len(results):.0%})"
                       for label, n in counts)
    return f"{len(results)} examples" + (f"; predicted {spread}" if spread else "")
