"""A run killed with SIGKILL mid-training and resumed gives the same per-step losses as an
uninterrupted run: the real CLI in real processes, no simulated crash."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gptkit.train.plot import read_metrics

pytestmark = pytest.mark.slow

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def gptkit(*args) -> list[str]:
    return [sys.executable, "-m", "gptkit", "pretrain", "--quiet", *args]


def losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run / "metrics.jsonl")}  # may be mid-write


def test_sigkill_then_resume_reproduces_every_loss(char_data, tmp_path):
    args = ["--preset", "tiny", "--data", char_data, "--max-steps", "300", "--batch-size", "16",
            "--block-size", "64", "--dropout", "0.1", "--save-every", "25", "--eval-every", "100",
            "--sample-tokens", "0", "--seed", "7"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(gptkit(*args, "--out", str(full)), env=ENV, check=True, capture_output=True)

    proc = subprocess.Popen(gptkit(*args, "--out", str(killed)), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill between two checkpoints, after at least one
        if (killed / "latest").exists() and len(losses(killed)) >= 60:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert len(losses(killed)) < 300

    # Mark what the killed run logged: a resumed run keeps the steps up to its checkpoint and redoes
    # the rest, where a fresh start would rewrite them all.
    records = read_metrics(killed / "metrics.jsonl")
    (killed / "metrics.jsonl").write_text("".join(json.dumps({**r, "before_kill": True}) + "\n" for r in records))
    checkpoint_step = int((killed / "latest").read_text().strip().removeprefix("step-"))

    subprocess.run(gptkit(*args, "--out", str(killed), "--resume"), env=ENV, check=True, capture_output=True)
    a, b = losses(full), losses(killed)
    assert sorted(a) == sorted(b) == list(range(1, 301))
    assert max(abs(a[s] - b[s]) for s in a) < 1e-5
    kept = [r["step"] for r in read_metrics(killed / "metrics.jsonl") if r.get("before_kill")]
    assert kept == list(range(1, checkpoint_step + 1)) and 0 < checkpoint_step < 300
