"""What a person reads after an evaluation: a terminal table and a plot of the metric against K."""

from __future__ import annotations

from pathlib import Path

from gptkit.io import save_figure


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
    """One panel per task: each metric against the number of in-context examples (perplexity, which
    is not a fraction, on its own axis at the right)."""
    # Imported here: matplotlib takes a second or more to import, which a command that stops before
    # plotting (a refused input, a failed run) should not pay. A bare Figure draws with Agg when
    # saved: no pyplot, no global backend, no display needed.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(results), 3.6), dpi=120)
    axes = fig.subplots(1, len(results), squeeze=False)
    for ax, r in zip(axes[0], results):
        ks = sorted(r["results"], key=int)
        twin = None
        for metric in r["results"][ks[0]]["metrics"]:
            values = [r["results"][k]["metrics"][metric] for k in ks]
            if metric == "ppl":
                twin = twin or ax.twinx()
                twin.plot([int(k) for k in ks], values, "s--", color="gray", label=metric)
                twin.set_ylabel("perplexity of the target")
            else:
                ax.plot([int(k) for k in ks], values, "o-", label=metric)
        ax.set_title(r["task"], fontsize=10)
        ax.set_xlabel("examples in the context (K)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        handles = ax.get_legend_handles_labels()
        extra = twin.get_legend_handles_labels() if twin else ([], [])
        ax.legend(handles[0] + extra[0], handles[1] + extra[1], fontsize=8)
    axes[0][0].set_ylabel("score")
    fig.tight_layout()
    return save_figure(fig, png)
