"""docs/chat.md's Chinese chit-chat recipe as written: the forward and the backward (MMI) model one
after the other, each with its wall time, final training loss and validation loss, and the chat's
replies to a few messages (`gptkit chat`, piped), as one JSON object on stdout
(benchmarks/results/chinese_chat_cpu.json holds a run's).

    python benchmarks/chinese_chat.py --workdir /tmp/zh > chinese_chat.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import torch

CONFIG = """\
# zh-chat.yaml: a Chinese chit-chat model from the bundled chatterbot-zh dialogues
data: chatterbot-zh
tokenizer: wordpiece        # a BERT-style vocab.txt learned from the dialogues
common_word_filter: false   # the 50 most common English words: not for Chinese
model: {block_size: 64}     # the shakespeare-char shape with a 64-token context: chit-chat turns are short
batch_size: 16
max_steps: 500
lr: 0.003
warmup_steps: 30
"""
COMMANDS = {  # name -> the flags of `gptkit dialogue train`, as docs/chat.md gives them
    "forward": "--config zh-chat.yaml --out runs/zh-chat",
    "backward (MMI)": "--config zh-chat.yaml --tokenizer runs/zh-chat --reverse --out runs/zh-chat-mmi",
}
CHAT = ["你好", "你几岁", "你喜欢什么食物?", "你是谁?", "你好，今天天气怎么样？"]  # docs/chat.md's transcript
CHAT_FLAGS = "--model runs/zh-chat --mmi-model runs/zh-chat-mmi --seed 0"


def summary(name: str, flags: str, workdir: Path, wall: float, load: str) -> dict:
    out = workdir / flags.split("--out ")[1].split()[0]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    val = [r["val_loss"] for r in rows if "val_loss" in r]
    return {"what": name, "command": f"gptkit dialogue train {flags}", "wall_s": round(wall, 1),
            "steps": rows[-1]["step"], "final_train_loss": round(rows[-1]["loss"], 3),
            "val_loss": round(val[-1], 3) if val else None, "load_average": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="Where zh-chat.yaml and runs/ are written.")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    (args.workdir / "zh-chat.yaml").write_text(CONFIG, encoding="utf-8")
    gptkit = shutil.which("gptkit") or "gptkit"
    runs = []
    for name, flags in COMMANDS.items():
        before, started = os.getloadavg()[0], time.perf_counter()
        subprocess.run([gptkit, "dialogue", "train", *flags.split(), "--quiet"], cwd=args.workdir, check=True,
                       capture_output=True)
        wall = time.perf_counter() - started
        runs.append(summary(name, flags, args.workdir, wall, f"{before:.1f} before, {os.getloadavg()[0]:.1f} after"))
    chat = subprocess.run([gptkit, "chat", *CHAT_FLAGS.split()], cwd=args.workdir, input="\n".join(CHAT) + "\n",
                          capture_output=True, text=True, check=True).stdout
    print(json.dumps({"what": "docs/chat.md's Chinese chit-chat recipe, as written", "machine": platform.processor()
                      or platform.machine(), "cpus": os.cpu_count(), "torch": torch.__version__,
                      "date": time.strftime("%Y-%m-%d"), "runs": runs,
                      "chat": {"command": f"gptkit chat {CHAT_FLAGS}", "input": CHAT, "output": chat.splitlines()}},
                     ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
