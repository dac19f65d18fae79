"""Bar charts of the recorded benchmark results, for docs/benchmarks.md.

    python benchmarks/plot_results.py benchmarks/results/train_h200.jsonl docs/img/train_throughput_h200.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


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
    fig.savefig(png)
    print(f"wrote {png}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
