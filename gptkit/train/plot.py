"""The loss curve a person looks at after a run: train loss (raw and smoothed) and validation loss."""

from __future__ import annotations

import json
from pathlib import Path

from gptkit.errors import GptkitError
from gptkit.io import save_figure


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a metrics.jsonl; a last line cut short by a killed run is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for i, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i < len(lines) - 1:
                raise GptkitError(f"{path}:{i + 1} is not valid JSON: the metrics log is damaged; "
                                  "remove that line (or the file) and run again") from None
    return records


def plot_losses(metrics_path: str | Path, png_path: str | Path, baseline: float | None = None,
                title: str = "training loss") -> Path:
    records = read_metrics(metrics_path)
    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
    # Imported here: matplotlib takes a second or more to import, which a command that stops before
    # plotting (a refused input, a failed run) should not pay. A bare Figure draws with Agg when
    # saved: no pyplot, no global backend, no display needed.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=120)
    ax = fig.subplots()
    if train:
        steps, losses = zip(*train)
        ax.plot(steps, losses, color="tab:blue", alpha=0.25, linewidth=0.8)
        window = max(1, len(losses) // 50)  # trailing mean: no lag at the start, unlike an EMA
        smooth = [sum(losses[max(0, i - window + 1): i + 1]) / (i + 1 - max(0, i - window + 1))
                  for i in range(len(losses))]
        ax.plot(steps, smooth, color="tab:blue", label="train (smoothed)")
    if val:
        ax.plot(*zip(*val), "o-", color="tab:orange", label="validation")
    if baseline is not None:
        ax.axhline(baseline, color="gray", linestyle="--", label=f"unigram baseline ({baseline:.2f})")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, png_path)
