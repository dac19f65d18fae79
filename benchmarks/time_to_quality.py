"""Time to quality: gptkit's default job beside nanoGPT's CPU recipe, on the same data, in one run.

    python benchmarks/time_to_quality.py --nanogpt ~/nanoGPT            # ~6 minutes on 2 cores
    python benchmarks/time_to_quality.py --nanogpt ~/nanoGPT --plot docs/img/time_to_quality_cpu.png --gptkit default= \
        --gptkit "adamw=--optimizer adamw" \
        --gptkit "stop30=--optimizer adamw --max-steps 2100 --batch-ramp 1500 --block-ramp 600" \
        --gptkit "before=--optimizer adamw --max-steps 1500 --lr 2e-3 --warmup-steps 100 --batch-ramp 0 --eval-every 250 --eval-batches 20"
    python benchmarks/time_to_quality.py --skip-nanogpt --gptkit "no-block-ramp=--block-ramp 0"   # an ablation

nanoGPT runs as its README's CPU command for shakespeare_char (its `train.py` with the values of
`config/train_shakespeare_char.py` and the README's overrides, as a process, from the nanoGPT
checkout given as --nanogpt: its train.py, model.py and configurator.py are copied unchanged),
gptkit as `gptkit pretrain` with its defaults. Both read the same tokens: the bundled Shakespeare as
the default job splits it (three whole plays held out), written to nanoGPT's `train.bin` / `val.bin`.
Each finished model is then scored the same way on the whole held-out split: every full window of
its own training length, no overlap, the mean next-character loss.

Times are wall-clock seconds from the command's start, imports and data preparation included,
because that is what a user waits for. Along the way nanoGPT's curve is its own validation estimate
(20 random batches) and gptkit's its validation loss (--eval-batches fixed batches of the held-out
plays), each at the moment it was logged; "reaches" is the first logged validation at or below
nanoGPT's final score. Each round runs nanoGPT, then each gptkit run, and appends a line a gptkit run
to the results file.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from plot_results import loss_vs_time
from report import emit

from gptkit.checkpoint import load_model
from gptkit.data import Corpus, prepare_shakespeare
from gptkit.data.shards import open_shard

REPO = Path(__file__).resolve().parent.parent
NANOGPT_TRAIN = [  # config/train_shakespeare_char.py, then the README's CPU overrides
    "--out_dir=out", "--eval_interval=250", "--eval_iters=200", "--log_interval=10",
    "--always_save_checkpoint=False", "--dataset=shakespeare_char", "--gradient_accumulation_steps=1",
    "--batch_size=64", "--block_size=256", "--n_layer=6", "--n_head=6", "--n_embd=384", "--dropout=0.2",
    "--learning_rate=1e-3", "--max_iters=5000", "--lr_decay_iters=5000", "--min_lr=1e-4", "--beta2=0.99",
    "--warmup_iters=100",
    "--device=cpu", "--compile=False", "--eval_iters=20", "--log_interval=1", "--block_size=64",
    "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128", "--max_iters=2000",
    "--lr_decay_iters=2000", "--dropout=0.0",
]
EVAL_LINE = re.compile(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)")
ITER_LINE = re.compile(r"iter (\d+): loss ([\d.]+)")

# Run in nanoGPT's directory with its own model.py: the whole held-out split in full windows of the
# model's block size, no overlap; prints the mean loss per character.
NANOGPT_SCORE = """
import numpy as np, torch
from model import GPT, GPTConfig
ckpt = torch.load("out/ckpt.pt", map_location="cpu")
model = GPT(GPTConfig(**ckpt["model_args"]))
model.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in ckpt["model"].items()})
model.eval()
data = np.memmap("data/shakespeare_char/val.bin", dtype=np.uint16, mode="r").astype(np.int64)
block = ckpt["model_args"]["block_size"]
n = (len(data) - 1) // block
x = torch.from_numpy(data[:n * block]).view(n, block)
y = torch.from_numpy(data[1:n * block + 1]).view(n, block)
with torch.no_grad():
    print(sum(model(x[i:i + 64], y[i:i + 64])[1].item() * len(x[i:i + 64]) for i in range(0, n, 64)) / n)
"""


def split_tokens(work: Path) -> tuple[dict[str, np.ndarray], int]:
    """The default job's split of the bundled Shakespeare, as tokens (gptkit's character tokenizer),
    and the size of the vocabulary."""
    corpus = Corpus(prepare_shakespeare(work / "shards", "char", progress=False))
    return {split: np.concatenate([np.asarray(open_shard(path)) for path, _ in corpus.shards(split)])
            for split in ("train", "val")}, corpus.vocab_size


def nanogpt_dir(work: Path, checkout: Path, tokens: dict[str, np.ndarray], vocab_size: int) -> Path:
    """nanoGPT's three files (unchanged) and its data layout: train.bin, val.bin, meta.pkl."""
    root = work / "nanogpt"
    data = root / "data" / "shakespeare_char"
    data.mkdir(parents=True, exist_ok=True)
    for name in ("train.py", "model.py", "configurator.py"):
        shutil.copy(checkout / name, root / name)
    for split, ids in tokens.items():
        ids.astype(np.uint16).tofile(data / f"{split}.bin")
    with open(data / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": vocab_size}, f)
    return root


def run_nanogpt(root: Path, curve: Path) -> dict:
    """Train with nanoGPT's recipe; its log lines, timed as they arrive, become a metrics file."""
    shutil.rmtree(root / "out", ignore_errors=True)
    rows: list[dict] = []
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-u", "train.py", *NANOGPT_TRAIN], cwd=root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for line in proc.stdout:
        now = round(time.perf_counter() - start, 3)
        if m := ITER_LINE.match(line):
            rows.append({"step": int(m[1]), "loss": float(m[2]), "time_s": now})
        elif m := EVAL_LINE.match(line):
            rows.append({"step": int(m[1]), "loss": float(m[2]), "val_loss": float(m[3]), "time_s": now})
    if proc.wait():
        raise SystemExit(f"nanoGPT's train.py failed with status {proc.returncode}")
    wall = time.perf_counter() - start
    score = subprocess.run([sys.executable, "-c", NANOGPT_SCORE], cwd=root, capture_output=True, text=True, check=True)
    curve.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"wall_s": round(wall, 1), "held_out_loss": round(float(score.stdout.split()[-1]), 4), "curve": rows}


def run_gptkit(out: Path, extra: list[str], curve: Path, held_out: np.ndarray) -> dict:
    """`gptkit pretrain` as a user runs it; its metrics' time_s counts from the training loop's start,
    which is when it wrote train_config.json, so the command's start-up is added back."""
    shutil.rmtree(out, ignore_errors=True)
    start, wall_start = time.perf_counter(), time.time()
    subprocess.run([sys.executable, "-m", "gptkit", "pretrain", "--out", str(out), *extra], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    wall = time.perf_counter() - start
    setup = (out / "train_config.json").stat().st_mtime - wall_start
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        r["time_s"] = round(r["time_s"] + setup, 3)
    curve.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"wall_s": round(wall, 1), "held_out_loss": round(score_gptkit(out, held_out), 4), "setup_s": round(setup, 1),
            "curve": [{k: r[k] for k in ("step", "time_s", "val_loss")} for r in rows if "val_loss" in r]}


def score_gptkit(out: Path, held_out: np.ndarray) -> float:
    """As NANOGPT_SCORE scores nanoGPT's model: full windows of the run's length, no overlap."""
    model = load_model(out).eval()
    data = held_out.astype(np.int64)
    block = json.loads((out / "train_config.json").read_text())["block_size"] or model.config.block_size
    n = (len(data) - 1) // block
    x = torch.from_numpy(data[:n * block]).view(n, block)
    y = torch.from_numpy(data[1:n * block + 1]).view(n, block)
    with torch.no_grad():
        return sum(model(x[i:i + 64], targets=y[i:i + 64]).item() * len(x[i:i + 64]) for i in range(0, n, 64)) / n


def reaches(curve: list[dict], target: float) -> float | None:
    """Seconds to the first logged validation at or below ``target``."""
    return next((r["time_s"] for r in curve if r.get("val_loss", float("inf")) <= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--nanogpt", type=Path, help="a nanoGPT checkout (train.py, model.py, configurator.py)")
    parser.add_argument("--gptkit", action="append", default=[], metavar="LABEL=FLAGS",
                        help="a gptkit run: its name and its `gptkit pretrain` flags (repeat it for an ablation); "
                             "default: the default job, `default=`")
    parser.add_argument("--json", default="benchmarks/results/time_to_quality_cpu.jsonl")
    parser.add_argument("--plot", help="a PNG of loss against seconds, every run of the last round")
    parser.add_argument("--skip-nanogpt", action="store_true", help="only gptkit (ablations against a known target)")
    args = parser.parse_args()
    if not args.skip_nanogpt and not (args.nanogpt and (args.nanogpt / "train.py").is_file()):
        parser.error("--nanogpt DIR: a nanoGPT checkout holding train.py, model.py and configurator.py "
                     "(git clone https://github.com/karpathy/nanoGPT), or --skip-nanogpt")
    runs = [run.partition("=")[::2] for run in args.gptkit or ["default="]]
    work = Path(tempfile.mkdtemp(prefix="ttq-"))
    tokens, vocab_size = split_tokens(work)
    root = None if args.skip_nanogpt else nanogpt_dir(work, args.nanogpt, tokens, vocab_size)
    for i in range(args.rounds):
        load = os.getloadavg()[0]
        nano = None if args.skip_nanogpt else run_nanogpt(root, work / "nanogpt.jsonl")
        curves = [f"nanoGPT's CPU recipe={work / 'nanogpt.jsonl'}"] if nano else []
        for label, flags in runs:
            ours = run_gptkit(work / "gptkit", shlex.split(flags), work / f"gptkit-{label}.jsonl", tokens["val"])
            curves.append(f"gptkit, {label}={work / f'gptkit-{label}.jsonl'}")
            result = {"benchmark": "time_to_quality", "round": i + 1, "gptkit": label, "gptkit_args": flags,
                      "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2), "gptkit_run": ours}
            if nano:
                target = nano["held_out_loss"]
                to_target = reaches(ours["curve"], target)
                result |= {"nanogpt_run": nano, "target": target, "gptkit_reaches_target_s": to_target,
                           "ratio_to_nanogpt_wall": to_target and round(to_target / nano["wall_s"], 3)}
            emit(result, args.json)
            load = os.getloadavg()[0]
        if args.plot:
            loss_vs_time(args.plot, *curves, top=3.0)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
