"""Bar charts of the recorded benchmark results, for docs/benchmarks.md.

    python benchmarks/plot_results.py benchmarks/results/train_h200.jsonl docs/img/train_throughput_h200.png
    python benchmarks/plot_results.py --by-batch benchmarks/results/train_batch_h100.jsonl docs/img/train_batch_h100.png

    python benchmarks/plot_results.py --loss-vs-time docs/img/default_job_h200.png eager=RUN1/metrics.jsonl graphs=RUN2/metrics.jsonl

``--by-batch`` reads the lines of benchmarks/train_gpu.sh (gptkit's and its peers', bench.py's format)
and draws tokens/s against batch size, one line per system, and prints the table for docs/benchmarks.md.
``--loss-vs-time`` draws each run's training and validation loss against the seconds since it began
(the ``time_s`` of its metrics.jsonl): time to quality, not only speed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from gptkit.config import GPTConfig  # noqa: E402
from gptkit.io import save_figure  # noqa: E402
from gptkit.model import flops_per_token  # noqa: E402


def main(results: str, png: str) -> None:
    rows = [json.loads(line) for line in Path(results).read_text().splitlines() if line.strip()]
    labels = [f"{r['preset']}\n{r['dtype']}{' + compile' if r['compile'] else ''}" for r in rows]
    values = [r["tokens_per_sec"] / 1000 for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4), dpi=120)
    bars = ax.bar(labels, values, color=["tab:gray" if r["dtype"] == "fp32" else "tab:blue" for r in rows])
    for bar, r in zip(bars, rows):
        ax.annotate(f"{r['tokens_per_sec'] / 1000:.0f}k\nMFU {r['mfu']:.0%}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("training tokens / s (thousands)")
    ax.set_title(f"gptkit pretraining throughput on {rows[0]['device']} (batch 16 x 1024)")
    ax.set_ylim(0, max(values) * 1.25)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, png)
    print(f"wrote {png}")


def by_batch(results: str, png: str) -> None:
    rows = []  # (system, batch, tokens/s, MFU, peak GiB) of the one-process GPT-2 124M runs
    for line in Path(results).read_text().splitlines():
        r = json.loads(line) if line.strip() else {}
        if r.get("preset") == "gpt2" and r.get("processes", 1) == 1:
            system = "gptkit" if r.get("fused_loss", True) else "gptkit, unfused loss"
            rows.append((system, r["batch_size"], r["tokens_per_sec"], r["mfu"], r["peak_memory_gib"]))
        elif "peer" in r and r.get("what") == "train gpt2-124M":
            mfu = r.get("mfu_989", r["tok_s"] * flops_per_token(GPTConfig.preset("gpt2"), 1024) / 989e12)
            rows.append((r["peer"], r["batch"], r["tok_s"], mfu, r["peak_gib"]))
    print("| system | batch x 1024 | tokens/s | MFU | peak memory |\n| --- | --- | --- | --- | --- |")
    for system, batch, tok_s, mfu, mem in rows:
        print(f"| {system} | {batch} | {tok_s:,} | {mfu:.1%} | {mem} GiB |")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for system in dict.fromkeys(r[0] for r in rows):
        points = sorted((b, t / 1000) for name, b, t, _, _ in rows if name == system)
        ax.plot(*zip(*points), marker="o", label=system)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({r[1] for r in rows}), [str(b) for b in sorted({r[1] for r in rows})])
    ax.set_xlabel("batch size (sequences of 1024 tokens)")
    ax.set_ylabel("training tokens / s (thousands)")
    ax.set_title("GPT-2 124M training, bf16 + compile, one GPU")
    ax.set_ylim(0, None)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, png)
    print(f"wrote {png}")


def loss_vs_time(png: str, *runs: str, top: float | None = None) -> None:
    """Each run's validation loss (and its training loss, faint, where logged) against seconds;
    ``top`` cuts the y axis, so the first steps' loss does not flatten the rest."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for run in runs:
        label, _, path = run.rpartition("=")
        rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        val = [(r["time_s"], r["val_loss"]) for r in rows if "val_loss" in r]
        line, = ax.plot(*zip(*val), marker="o", markersize=3, label=f"{label or path} (validation {val[-1][1]:.3f})")
        train = [(r["time_s"], r["loss"]) for r in rows if "loss" in r]
        if train:
            ax.plot(*zip(*train), alpha=0.3, linewidth=0.6, color=line.get_color())
    ax.set_xlabel("seconds since the run began")
    ax.set_ylabel("loss (nats/token)")
    ax.set_ylim(top=top)
    ax.set_title("Time to quality: validation loss (training loss faint)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, png)
    print(f"wrote {png}")


if __name__ == "__main__":
    if sys.argv[1] == "--loss-vs-time":
        loss_vs_time(*sys.argv[2:])
    elif sys.argv[1] == "--by-batch":
        by_batch(*sys.argv[2:4])
    else:
        main(*sys.argv[1:3])
