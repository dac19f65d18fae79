"""GPT-3's banded attention computing only the band, against the dense attention under the band mask.

    python benchmarks/banded_attention.py                      # writes the two files below
    python benchmarks/banded_attention.py --lengths 1024 4096 --rounds 3 --out /tmp/b.json --plot /tmp/b.png
    python benchmarks/banded_attention.py --replot             # redraw the plot from the results file

One banded layer's forward + backward at ``--window`` (256) for each T, batch 1, 128 wide, 4 heads (the
shape of issue 21's 4-layer alternating model), three ways:

- ``banded``: gptkit.model.banded.banded_attention (here the blocked PyTorch path), as the model's banded layers run it;
- ``dense_masked``: what a banded layer was before (issue 21), SDPA over all T x T scores under the band mask
  (the mask built once beforehand, as the model builds it once per forward for all layers);
- ``dense_causal``: plain causal SDPA (``is_causal=True``), the dense layers' fast path, for reference.

Measured for the attention alone (q, k, v -> y) and for a whole pre-LN Block (LayerNorms, attention
with its projections, MLP). Rounds alternate: each round runs every (T, way) once, in a rotated order,
after one untimed warm-up round; reported are the median of ``--rounds`` and the min and max.
Writes benchmarks/results/banded_attention_cpu.json and docs/img/banded_attention.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gptkit.config import GPTConfig
from gptkit.io import save_figure, write_text
from gptkit.model.attention import build_attention_mask
from gptkit.model.banded import banded_attention
from gptkit.model.gpt import Block

WAYS = ("banded", "dense_masked", "dense_causal")


def attention_case(way: str, T: int, args, mask: torch.Tensor):
    """A closure running one forward + backward of the attention alone."""
    g = torch.Generator().manual_seed(T)
    hd = args.width // args.heads
    q, k, v = (torch.randn(args.batch, args.heads, T, hd, generator=g, requires_grad=True) for _ in range(3))
    grad = torch.randn(args.batch, args.heads, T, hd, generator=g)

    def attend():
        if way == "banded":
            return banded_attention(q, k, v, args.window)
        if way == "dense_masked":
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    return lambda: torch.autograd.grad(attend(), (q, k, v), grad)


def block_case(way: str, T: int, args, mask: torch.Tensor):
    """A closure running one forward + backward of a whole pre-LN Block (attention dropout off, as measured)."""
    config = GPTConfig(vocab_size=256, block_size=T, n_layer=2, n_head=args.heads, n_embd=args.width,
                       embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0)
    if way == "banded":  # layer 1 of GPT-3's alternating pattern: the model's own banded layer
        config = config.replace(attention="alternating", local_window=args.window)
    torch.manual_seed(0)
    block = Block(config, 1)
    g = torch.Generator().manual_seed(T)
    x = torch.randn(args.batch, T, args.width, generator=g, requires_grad=True)
    grad = torch.randn(args.batch, T, args.width, generator=g)
    inputs = [x, *block.parameters()]
    layer_mask = mask if way == "dense_masked" else None  # None: causal SDPA, or for banded no padding
    return lambda: torch.autograd.grad(block(x, layer_mask), inputs, grad)


def measure(args) -> dict:
    masks = {T: build_attention_mask(T, None, args.window) for T in args.lengths}
    cases = {(what, T, way): make(way, T, args, masks[T])
             for what, make in (("attention", attention_case), ("block", block_case))
             for T in args.lengths for way in WAYS}
    keys = list(cases)
    times = {key: [] for key in keys}
    for r in range(args.rounds + 1):  # round 0 warms up (allocator, kept plans) and is not counted
        shift = r % len(keys)
        for key in keys[shift:] + keys[:shift]:
            start = time.perf_counter()
            cases[key]()
            elapsed = (time.perf_counter() - start) * 1e3
            if r:
                times[key].append(round(elapsed, 2))
        print(f"round {r}/{args.rounds} done", flush=True)
    results = {}
    for what in ("attention", "block"):
        rows = []
        for T in args.lengths:
            row = {"T": T}
            for way in WAYS:
                ts = times[(what, T, way)]
                row[way] = {"median_ms": round(statistics.median(ts), 2), "min_ms": min(ts), "max_ms": max(ts), "ms": ts}
            row["dense_masked_over_banded"] = round(row["dense_masked"]["median_ms"] / row["banded"]["median_ms"], 2)
            row["dense_masked_over_banded_min"] = round(row["dense_masked"]["min_ms"] / row["banded"]["min_ms"], 2)
            row["dense_causal_over_banded"] = round(row["dense_causal"]["median_ms"] / row["banded"]["median_ms"], 2)
            row["banded_us_per_token"] = round(1e3 * row["banded"]["median_ms"] / T, 2)
            rows.append(row)
        results[what] = rows
    return results


def checks(results: dict, lengths: list[int]) -> dict:
    """Issue 21's targets, on the attention alone: >= 4x the dense masked layer at T = 4,096, and linear
    growth from the first to the last length (each doubling at most 2.2x, and the cost per token at the
    last length no more than 1.1x that at the first)."""
    rows = {row["T"]: row for row in results["attention"]}
    out = {}
    if 4096 in rows:
        out["banded >= 4x dense masked at T = 4096"] = rows[4096]["dense_masked_over_banded"] >= 4.0
    ms = [rows[T]["banded"]["median_ms"] for T in lengths]
    doubling = [b / a for a, b in zip(ms, ms[1:])]
    out["banded grows linearly in T"] = (all(d <= 2.2 for d in doubling)
                                         and ms[-1] / lengths[-1] <= 1.1 * ms[0] / lengths[0])
    return out


def plot(data: dict, png: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"dense_masked": ("dense under the band mask (today)", "tab:red"),
              "dense_causal": ("dense causal (reference)", "tab:gray"),
              "banded": ("banded, only the band", "tab:blue")}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120)
    for ax, what, title in zip(axes, ("attention", "block"), ("attention alone", "whole Block (attention + MLP)")):
        rows = data["results"][what]
        Ts = [row["T"] for row in rows]
        for way, (label, color) in styles.items():
            med = [row[way]["median_ms"] for row in rows]
            err = [[m - row[way]["min_ms"] for m, row in zip(med, rows)], [row[way]["max_ms"] - m for m, row in zip(med, rows)]]
            ax.errorbar(Ts, med, yerr=err, marker="o", capsize=3, label=label, color=color)
        for row in rows:
            ax.annotate(f"{row['dense_masked_over_banded']:.1f}x", (row["T"], row["banded"]["median_ms"]),
                        textcoords="offset points", xytext=(7, -13), ha="left", fontsize=8, color="tab:blue")  # dense masked / banded
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(Ts, [f"{T:,}" for T in Ts])
        ax.set_xlabel("sequence length T")
        ax.set_ylabel("ms per forward + backward")
        first = rows[0]["banded"]["median_ms"]
        ax.plot(Ts, [first * T / Ts[0] for T in Ts], ls=":", color="tab:blue", alpha=0.6, label="linear in T, from the first banded point")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"GPT-3 banded layer, window {data['window']}, {data['width']} wide, {data['heads']} heads, batch {data['batch']}, fp32, "
                 f"on {data['cpu']} ({data['threads']} threads): median of {data['rounds']} rounds, bars min to max; "
                 "labels: dense masked / banded", fontsize=9)
    fig.tight_layout()
    save_figure(fig, png)
    print(f"wrote {png}")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x {os.cpu_count()}"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", default="benchmarks/results/banded_attention_cpu.json")
    parser.add_argument("--plot", default="docs/img/banded_attention.png")
    parser.add_argument("--replot", action="store_true", help="only redraw --plot from the results in --out")
    args = parser.parse_args()
    if args.replot:
        return plot(json.loads(Path(args.out).read_text()), args.plot)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    results = measure(args)
    data = {
        "what": "one banded layer, forward + backward, fp32",
        "device": "cpu", "cpu": cpu_name(), "threads": args.threads,
        "torch": torch.__version__, "window": args.window, "width": args.width, "heads": args.heads,
        "batch": args.batch, "rounds": args.rounds,
        "note": "a shared 2-core machine with other benchmarks running: see the load averages and each run's ms",
        "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
        "results": results, "checks": checks(results, args.lengths),
    }
    print("median (min) ms per forward + backward")
    print("| what | T | banded | dense masked | dense causal | dense masked / banded | banded us/token |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for what in ("attention", "block"):
        for row in results[what]:
            cells = " | ".join(f"{row[way]['median_ms']:.1f} ({row[way]['min_ms']:.1f})" for way in WAYS)
            ratio = f"{row['dense_masked_over_banded']:.2f}x ({row['dense_masked_over_banded_min']:.2f}x)"
            print(f"| {what} | {row['T']:,} | {cells} | {ratio} | {row['banded_us_per_token']} |")
    print(json.dumps(data["checks"]))
    write_text(args.out, json.dumps(data, indent=2) + "\n")
    print(f"wrote {args.out}")
    plot(data, args.plot)


if __name__ == "__main__":
    main()
