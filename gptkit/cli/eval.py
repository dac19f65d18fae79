"""`gptkit eval`: perplexity and zero/few-shot tasks."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gptkit.cli.generate import exact_precision_options, load_for_inference
from gptkit.cli.group import cli
from gptkit.errors import GptkitError
from gptkit.run_dir import check_output_file


@cli.group("eval")
def eval_group() -> None:
    """Measure a model: perplexity, last word, multiple choice, prompted generation, few-shot."""


def _load(model_dir: str, device: str, dtype: str, quantize: str):
    return load_for_inference(model_dir, device, dtype, quantize, exact=True)  # auto: fp32, the numbers are the result


def model_options(batch_size: int, out_help: str):
    """--model, --batch-size, --device, --out and --quiet: what every eval command takes."""
    options = [
        click.option("--model", "model_dir", required=True, help="A model or run directory, or a cached model name."),
        click.option("--batch-size", type=click.IntRange(min=1), default=batch_size, show_default=True),
        click.option("--device", default="auto", show_default=True),
        click.option("--out", type=click.Path(dir_okay=False), help=out_help),
        click.option("--quiet", is_flag=True, help="No progress bars."),
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@eval_group.command()
@model_options(8, "Write the results as JSON.")
@click.option("--data", "data_file", required=True, type=click.Path(dir_okay=False), help="A text file to score.")
@click.option("--stride", type=click.IntRange(min=1), default=None, help="New tokens scored per window (default: half the context).")
@exact_precision_options
def perplexity(model_dir, data_file, stride, batch_size, device, out, quiet, dtype, quantize) -> None:
    """Perplexity, bits per byte and word perplexity of a text file (sliding window)."""
    from gptkit.eval import perplexity as run
    from gptkit.io import write_text

    check_output_file(out, [model_dir, data_file])
    path = Path(data_file)
    if not path.is_file():
        raise GptkitError(f"--data {path} does not exist")
    model, tokenizer = _load(model_dir, device, dtype, quantize)
    # Bytes that are not UTF-8 become U+FFFD, as `gptkit prepare` reads training text.
    text = path.read_text(encoding="utf-8", errors="replace")
    result = run(model, tokenizer, text, stride, batch_size, progress=not quiet)
    result = {"model": model_dir, "data": str(path), **result}
    for key in ("perplexity", "bits_per_byte", "word_perplexity", "tokens", "bytes", "words", "stride", "windows"):
        value = result[key]
        click.echo(f"{key:16s} {value:,.4f}" if isinstance(value, float) else f"{key:16s} {value:,}")
    if out:
        write_text(out, json.dumps(result, indent=2) + "\n")


@eval_group.command()
@model_options(16, "Write every number and setting as JSON (and a plot beside it).")
@click.option("--task", "tasks", multiple=True, required=True,
              help="A bundled task name or a task file (YAML/JSON); repeatable. `gptkit eval list` shows the bundled ones.")
@click.option("--shots", default="0", show_default=True, help="Comma-separated numbers of in-context examples, e.g. 0,1,8.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for drawing the in-context examples.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate only the first N examples.")
@exact_precision_options
def task(model_dir, tasks, shots, seed, limit, batch_size, device, out, quiet, dtype, quantize) -> None:
    """Zero- and few-shot evaluation on tasks described by data files."""
    from gptkit.eval import evaluate_task, load_task
    from gptkit.eval.report import plot_shots, table
    from gptkit.io import write_text

    for written in [out, Path(out).with_suffix(".png")] if out else []:  # the results, and their plot
        check_output_file(written, [model_dir, *tasks])
    try:
        ks = sorted({int(k) for k in shots.split(",") if k.strip()})
    except ValueError:
        raise GptkitError(f"--shots takes comma-separated whole numbers such as 0,1,8; got {shots!r}") from None
    if not ks or min(ks) < 0:
        raise GptkitError(f"--shots takes numbers >= 0; got {shots!r}")
    specs = [load_task(t) for t in tasks]
    model, tokenizer = _load(model_dir, device, dtype, quantize)
    results = [evaluate_task(model, tokenizer, spec, ks, seed, limit, batch_size, progress=not quiet) for spec in specs]
    click.echo(table(results))
    if out:
        write_text(out, json.dumps({"model": model_dir, "tasks": results}, indent=2) + "\n")
        if len(ks) > 1:
            click.echo(f"plot: {plot_shots(results, Path(out).with_suffix('.png'))}")


@eval_group.command()
@model_options(16, "Write the harness's results as JSON.")
@click.option("--task", "tasks", multiple=True, required=True,
              help="An lm-evaluation-harness task name (or several, comma-separated); repeatable.")
@click.option("--include-path", type=click.Path(file_okay=False), help="A folder of your own harness task YAML files.")
@click.option("--num-fewshot", type=click.IntRange(min=0), default=None, help="In-context examples (default: each task's own).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate only the first N examples of each task.")
def harness(model_dir, tasks, include_path, num_fewshot, limit, batch_size, device, out, quiet) -> None:
    """Run EleutherAI's lm-evaluation-harness on a gptkit model (pip install lm-eval)."""
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise GptkitError("the lm-evaluation-harness is not installed: pip install 'lm-eval>=0.4'") from None
    from gptkit.eval.harness import GptkitLM
    from gptkit.io import write_text

    check_output_file(out, [model_dir, include_path])
    names = [t.strip() for spec in tasks for t in spec.split(",") if t.strip()]
    manager = TaskManager(include_path=include_path) if include_path else TaskManager()
    unknown = [t for t in names if t not in manager.all_tasks]
    if unknown:
        raise GptkitError(f"unknown harness task(s) {', '.join(unknown)}; `lm_eval ls tasks` lists them "
                          "(or give --include-path for your own)")
    results = lm_eval.simple_evaluate(model=GptkitLM(model_dir, device=device, batch_size=batch_size, progress=not quiet),
                                      tasks=names,
                                      num_fewshot=num_fewshot, limit=limit, task_manager=manager)
    for task, metrics in results["results"].items():
        for name, value in metrics.items():
            if isinstance(value, float) and "stderr" not in name:
                click.echo(f"{task:24s} {name:28s} {value:.4f}")
    if out:
        write_text(out, json.dumps(results["results"], indent=2, default=str) + "\n")


@eval_group.command("list")
def list_tasks() -> None:
    """The bundled tasks."""
    from gptkit.eval import bundled_tasks, load_task

    for name in sorted(bundled_tasks()):
        spec = load_task(name)
        click.echo(f"{name:24s} {spec.type:10s} {', '.join(spec.metrics)}")
