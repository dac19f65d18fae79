"""The results table of docs/finetuning.md: GPT-1 fine-tuning on the four bundled Shakespeare sets,
pretrained vs from scratch and λ = 0 vs 0.5, each scored on the held-out test split.

    gptkit pretrain --out runs/shakespeare                      # the default job
    python benchmarks/finetune_shakespeare.py --model runs/shakespeare --out runs/finetune

Each run keeps the model of its best validation accuracy (early stopping); the table reports that
model's accuracy and macro-F1 on the test split, beside the majority-class baseline (the most
frequent training label, scored on the test split). "From scratch" is the same shape and tokenizer
with random weights. Results go to --out/results.json and are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import gptkit
from gptkit.finetune import FinetuneConfig, Labels, bundled_task, finetune, load_task_model, predict, read_examples
from gptkit.finetune.metrics import task_metrics
from gptkit.finetune.tasks import BUNDLED

RUNS = {"pretrained, λ = 0.5": ("pretrained", 0.5), "pretrained, λ = 0": ("pretrained", 0.0),
        "from scratch, λ = 0.5": ("scratch", 0.5)}


def scratch_copy(model_dir: str, out: Path) -> Path:
    """The pretrained model's shape and tokenizer with fresh random weights."""
    model, tokenizer = gptkit.load(model_dir)
    torch.manual_seed(0)
    gptkit.GPT(model.config).save_pretrained(out, tokenizer)
    return out


def test_scores(model_dir: Path, name: str) -> dict[str, float]:
    model, tokenizer = load_task_model(model_dir)
    test = read_examples(bundled_task(name, "test"), model.labels.task)
    probs = np.array([list(r["probabilities"].values()) if isinstance(r["probabilities"], dict) else r["probabilities"]
                      for r in predict(model, tokenizer, test)])
    gold = np.array([model.labels.index(ex, "train") for ex in test])
    return task_metrics(probs, gold, regression=False)


def majority(name: str, task: str) -> float:
    train, test = (read_examples(bundled_task(name, split), task) for split in ("train", "test"))
    return Labels.infer(task, train).majority_baseline(train, test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="runs/shakespeare", help="The pretrained model (the default job's run).")
    parser.add_argument("--out", default="runs/finetune")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    out = Path(args.out)
    inits = {"pretrained": args.model, "scratch": str(scratch_copy(args.model, out / "scratch"))}
    rows = []
    for name, task in BUNDLED.items():
        for label, (init, lm_coef) in RUNS.items():
            run_dir = out / f"{name}-{init}-lm{lm_coef}"
            t0 = time.perf_counter()
            report = finetune(FinetuneConfig(task=task, init_from=inits[init], train=str(bundled_task(name, "train")),
                                             valid=str(bundled_task(name, "valid")), out=str(run_dir), lm_coef=lm_coef, lr=args.lr,
                                             epochs=args.epochs, patience=args.patience, device=args.device),
                              progress=False)
            rows.append({"set": name, "task": task, "run": label, "best_epoch": report["best"]["epoch"],
                         "valid_accuracy": report["best"]["accuracy"], **test_scores(run_dir, name),
                         "majority": majority(name, task), "seconds": round(time.perf_counter() - t0, 1)})
            print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    (out / "results.json").write_text(json.dumps({"args": vars(args), "device": device, "rows": rows}, indent=2,
                                                 ensure_ascii=False) + "\n")
    print("\n| set (task) | run | test accuracy | test macro-F1 | majority baseline | best epoch |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['set']} ({r['task']}) | {r['run']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | "
              f"{r['majority']:.3f} | {r['best_epoch']:g} |")


if __name__ == "__main__":
    main()
