"""A run killed with SIGKILL mid-training and resumed gives the same per-step losses as an
uninterrupted run: the real CLI in real processes, no simulated crash (the uninterrupted reference
runs in the test's own process, as tests/train/test_distributed.py's does: a process start is most of
a short run's time)."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gptkit.train import TrainConfig, pretrain
from gptkit.train.plot import read_metrics

pytestmark = pytest.mark.slow

STEPS, SAVE_EVERY, KILL_AT = 30, 10, 15
CHECKPOINT = KILL_AT // SAVE_EVERY * SAVE_EVERY  # the newest checkpoint when the run is killed

# `gptkit pretrain`, except that before step KILL_AT + 1 it says so and waits to be killed: the kill
# lands between two checkpoints however busy the machine is, never after the run has finished.
PAUSED_RUN = f"""
import sys, threading
from gptkit.train import Trainer
step = Trainer.train_step
def train_step(self):
    if self.step == {KILL_AT}:
        print("paused", flush=True)
        threading.Event().wait()
    return step(self)
Trainer.train_step = train_step
from gptkit.cli.main import main
main()
"""


def gptkit(*args, paused: bool = False) -> list[str]:
    start = ["-c", PAUSED_RUN] if paused else ["-m", "gptkit"]
    return [sys.executable, *start, "pretrain", "--quiet", *args]


def losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run / "metrics.jsonl")}


# Dropout on, and a validation between the checkpoint and the kill (step 12), which the resumed run does again.
RUN = dict(preset="tiny", max_steps=STEPS, batch_size=16, block_size=64, dropout=0.1, save_every=SAVE_EVERY,
           eval_every=12, log_every=5, sample_tokens=0, seed=7)


def test_sigkill_then_resume_reproduces_every_loss(char_data, tmp_path):
    args = ["--data", char_data, *(f"--{k.replace('_', '-')}={v}" for k, v in RUN.items())]
    full, killed = tmp_path / "full", tmp_path / "killed"
    proc = subprocess.Popen(gptkit(*args, "--out", str(killed), paused=True), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # The uninterrupted run, in this process while the one to kill starts: two cores, two processes.
    pretrain(TrainConfig(**RUN, data=char_data, out=str(full)), progress=False)
    paused = proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    _, errors = proc.communicate()
    assert paused == "paused\n" and proc.returncode == -signal.SIGKILL, errors
    assert sorted(losses(killed)) == list(range(1, KILL_AT + 1))

    # Mark what the killed run logged: a resumed run keeps the steps up to its checkpoint and redoes
    # the rest, where a fresh start would rewrite them all.
    records = read_metrics(killed / "metrics.jsonl")
    (killed / "metrics.jsonl").write_text("".join(json.dumps({**r, "before_kill": True}) + "\n" for r in records))
    assert int((killed / "latest").read_text().strip().removeprefix("step-")) == CHECKPOINT

    subprocess.run(gptkit(*args, "--out", str(killed), "--resume"), check=True, capture_output=True)
    a, b = losses(full), losses(killed)
    assert sorted(a) == sorted(b) == list(range(1, STEPS + 1))
    assert max(abs(a[s] - b[s]) for s in a) < 1e-5
    kept = [r["step"] for r in read_metrics(killed / "metrics.jsonl") if r.get("before_kill")]
    assert kept == list(range(1, CHECKPOINT + 1))
