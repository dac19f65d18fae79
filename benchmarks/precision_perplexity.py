"""What each inference precision costs: perplexity on the bundled held-out plays, fp32 vs bf16 vs int8 vs int4.

    gptkit pretrain --optimizer adamw --max-steps 1500 --lr 2e-3 --warmup-steps 100 --batch-ramp 0 --block-ramp 0 \
                    --out /tmp/ppl-model --quiet    # the model measured: the default job until issue 27
    python benchmarks/precision_perplexity.py /tmp/ppl-model --out benchmarks/results/precision_perplexity_cpu.json

Perplexity only means something for a trained model, so give it one. Each play is scored whole with
gptkit.eval.perplexity (sliding window, stride half the context); the change is relative to fp32.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import torch

import gptkit
from gptkit.data import shakespeare_splits
from gptkit.eval import perplexity
from gptkit.io import write_text

PRECISIONS = {"fp32": {}, "bf16": {"dtype": torch.bfloat16}, "int8": {"quantize": "int8"}, "int4": {"quantize": "int4"}}


def describe(model: str) -> str:
    """The model's path, and its run's last validation loss when it is a training run."""
    metrics = Path(model) / "metrics.jsonl"
    if not metrics.is_file():
        return model
    losses = [row["val_loss"] for row in map(json.loads, metrics.read_text().splitlines()) if "val_loss" in row]
    return f"{model} (validation loss {losses[-1]:.3f})" if losses else model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="A trained model or run directory.")
    p.add_argument("--out", help="Write the results as JSON here.")
    p.add_argument("--describe", help="What the model is, for the JSON (default: its path and final validation loss).")
    args = p.parse_args()

    plays = shakespeare_splits()["val"]
    result = {"model": args.describe or describe(args.model), "plays": [d.source for d in plays], "precisions": {},
              "machine": f"{os.cpu_count()} CPU cores ({torch.backends.cpu.get_cpu_capability()}), torch {torch.__version__}"}
    for name, precision in PRECISIONS.items():
        model, tokenizer = gptkit.load(args.model, **precision)
        scores = [perplexity(model, tokenizer, d.text, batch_size=32) for d in plays]
        nll, tokens = sum(s["nll"] for s in scores), sum(s["tokens"] for s in scores)
        result["precisions"][name] = {"perplexity": math.exp(nll / tokens), "per_play": [s["perplexity"] for s in scores]}
    exact = result["precisions"]["fp32"]["perplexity"]
    print("| precision | perplexity (held-out plays) | change |\n| --- | --- | --- |")
    for name, r in result["precisions"].items():
        r["change"] = r["perplexity"] / exact - 1
        print(f"| {name} | {r['perplexity']:.4f} | {r['change']:+.3%} |")
    if args.out:
        write_text(args.out, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
