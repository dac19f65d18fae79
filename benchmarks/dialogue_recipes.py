"""docs/chat.md's dialogue recipes as written: wall time, final training loss and validation loss of
each, as JSON lines on stdout (benchmarks/results/dialogue_recipes_cpu.json holds a run's).

    python benchmarks/dialogue_recipes.py --workdir /tmp/recipes > recipes.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

RECIPES = {  # name -> the flags of `gptkit dialogue train`
    "tang": "--data tang --no-common-word-filter --loss-on-all-turns --max-steps 400 --out runs/tang",
    "shakespeare forward, first run": "--out runs/chat --loss-on-all-turns --max-steps 700 --lr 2e-3 --eval-every 350 "
                                      "--save-every 350",
    "shakespeare backward, first run": "--out runs/chat-mmi --loss-on-all-turns --max-steps 700 --lr 2e-3 "
                                       "--eval-every 350 --save-every 350 --reverse",
}


def run(name: str, flags: str, workdir: Path) -> dict:
    args = [shutil.which("gptkit") or "gptkit", "dialogue", "train", *flags.split(), "--quiet"]
    load, started = os.getloadavg()[0], time.perf_counter()
    subprocess.run(args, cwd=workdir, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - started
    out = workdir / flags.split("--out ")[1].split()[0]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    val = [r["val_loss"] for r in rows if "val_loss" in r]
    return {"what": name, "command": f"gptkit dialogue train {flags} --quiet", "wall_s": round(wall, 1),
            "steps": rows[-1]["step"], "final_train_loss": round(rows[-1]["loss"], 3),
            "val_loss": round(val[-1], 3) if val else None,
            "load_average": f"{load:.1f} before, {os.getloadavg()[0]:.1f} after"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="Where the runs/ directories are written.")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    for name, flags in RECIPES.items():
        print(json.dumps(run(name, flags, args.workdir)), flush=True)


if __name__ == "__main__":
    main()
