"""What a person reads after an evaluation: a terminal table and a plot of the metric against K."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def table(results: list[dict]) -> str:
    rows = [("task", "K", "shots used", "metric", "value")]
    for r in results:
        for k, res in r["results"].items():
            for metric, value in res["metrics"].items():
                rows.append((r["task"], k, f"{res['mean_shots']:.1f}", metric, f"{value:.4f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def plot_shots(results: list[dict], png: str | Path) -> Path:
    """One line per task and metric: how the metric moves with the number of in-context examples."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for r in results:
        ks = sorted(r["results"], key=int)
        for metric in r["results"][ks[0]]["metrics"]:
            ax.plot([int(k) for k in ks], [r["results"][k]["metrics"][metric] for k in ks], "o-",
                    label=f"{r['task']} {metric}")
    ax.set_xlabel("examples in the context (K)")
    ax.set_ylabel("metric")
    ax.set_title("few-shot evaluation")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return Path(png)
