"""Distributed training started the way a user starts it: torchrun, 2 CPU processes, gloo, a tiny model.

Every run is a real `torchrun -m gptkit pretrain`; a run is paused or fails at a fixed step through a
wrapper script (as in test_kill_resume.py), so nothing waits on a clock.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gptkit import GptkitError
from gptkit.data import WindowLoader
from gptkit.data.batches import rank_rows
from gptkit.tensor_io import load_tensors
from gptkit.train import TrainConfig, pretrain
from gptkit.train.plot import read_metrics
from tests.torchrun import finish, torchrun

STEPS, SAVE_EVERY, KILL_AT = 12, 4, 6

# `gptkit pretrain`, except that each rank says so and waits to be killed before step KILL_AT + 1.
PAUSED = f"""
import os, threading
from gptkit.train import Trainer
step = Trainer.train_step
def train_step(self):
    if self.step == {KILL_AT}:
        os.write(1, f"paused {{os.getpid()}}\\n".encode())  # one write: the ranks' lines never interleave
        threading.Event().wait()
    return step(self)
Trainer.train_step = train_step
from gptkit.cli.main import main
main()
"""

# `gptkit pretrain`, except that rank 1 meets a bad window at step 3 while rank 0 carries on into the
# gradient all-reduce, where it waits for rank 1.
FAILING = """
import os
from gptkit.errors import GptkitError
from gptkit.train import Trainer
step = Trainer.train_step
def train_step(self):
    if self.step == 3 and os.environ["RANK"] == "1":
        raise GptkitError("shard train-0000.bin holds token id 900, outside the vocabulary")
    return step(self)
Trainer.train_step = train_step
from gptkit.cli.main import main
main()
"""


# Two micro-batches of 8 windows a step: gradients are synchronised once, after the second.
RUN = dict(preset="tiny", batch_size=8, grad_accum=2, block_size=32, max_steps=STEPS, save_every=SAVE_EVERY,
           eval_every=6, eval_batches=2, sample_tokens=0, seed=3, keep_checkpoints=3)


def run_args(char_data, out: Path, *extra: str, **keys) -> list[str]:
    """The flags of `gptkit pretrain` for RUN with ``keys`` changed."""
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in {**RUN, **keys}.items()]
    return ["pretrain", "--quiet", "--data", char_data, "--out", str(out), *flags, *extra]


def in_process(char_data, out: Path, **keys) -> None:
    """The same run in this process: the one-process reference, without a process start."""
    pretrain(TrainConfig(**{**RUN, **keys}, data=char_data, out=str(out)), progress=False)


def paused_pid(job: subprocess.Popen) -> int:
    """The pid in the next "paused PID" line a rank of ``job`` prints; the job's output if it ends first."""
    other = []
    for line in job.stdout:
        if line.startswith("paused "):
            return int(line.split()[1])
        other.append(line)
    job.kill()
    pytest.fail(f"the job ended ({job.wait()}) before pausing; stdout:\n{''.join(other)}\nstderr:\n{job.stderr.read()}")


def assert_gone_within(pids: list[int], seconds: float) -> None:
    """Each process ends (or is a zombie no one has reaped yet) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while alive := [pid for pid in pids if _running(pid)]:
        if time.monotonic() > deadline:
            for pid in alive:
                os.kill(pid, signal.SIGKILL)
            pytest.fail(f"ranks {alive} outlived their killed launcher by {seconds} s")
        time.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run / "metrics.jsonl")}


def assert_same_weights(run: Path, reference: Path, step: int) -> None:
    """The whole model a run saved at ``step`` (gathered by rank 0) is the reference's, within 1e-5."""
    a, b = (load_tensors(r / "checkpoints" / f"step-{step:07d}" / "model.safetensors") for r in (run, reference))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=0, msg=key)


@pytest.mark.slow
def test_ddp_killed_with_sigkill_resumes_on_one_and_on_two_processes(char_data, tmp_path):
    # 2 DDP processes, SIGKILLed after step 6 -> 1 process from their step-4 shards -> 2 FSDP processes
    # from that one's step-8 checkpoint -> 1 process reading the FSDP shards of step 12: every loss and
    # every saved model equal to one uninterrupted process's.
    full, killed = tmp_path / "full", tmp_path / "killed"
    (tmp_path / "paused.py").write_text(PAUSED)
    job = torchrun(2, run_args(char_data, killed), tmp_path / "paused.py", stdout=subprocess.PIPE)
    in_process(char_data, full)  # the uninterrupted run, while the job starts
    workers = [paused_pid(job) for _ in range(2)]  # both ranks paused after step 6
    os.kill(job.pid, signal.SIGKILL)  # torchrun alone: its ranks, each in a session of its own, die with it
    job.communicate()
    assert_gone_within(workers, seconds=10)
    assert (killed / "latest").read_text().strip() == "step-0000004"
    assert_same_weights(killed, full, 4)  # four DDP steps on 2 processes, four steps of one process
    expected = losses(full)
    assert sorted(expected) == list(range(1, STEPS + 1))

    def assert_same_losses() -> None:
        got = losses(killed)
        assert sorted(got) == sorted(expected)
        assert max(abs(got[s] - expected[s]) for s in expected) < 1e-5

    in_process(char_data, killed, resume=True)  # 2 -> 1: one plain process reads the DDP shards
    assert_same_losses()
    (killed / "latest").write_text("step-0000008\n")  # as if it had died after its step-8 checkpoint
    finish(torchrun(2, run_args(char_data, killed, "--resume", "--parallel=fsdp")))  # 1 -> 2, whole -> shards
    assert_same_losses()
    assert_same_weights(killed, full, 12)  # four FSDP steps, gathered by rank 0: four steps of one process
    assert (killed / "checkpoints" / "step-0000012" / "distributed" / ".metadata").is_file()
    model = pretrain(TrainConfig(**RUN, data=char_data, out=str(killed), resume=True), progress=False).trainer.model
    reference = load_tensors(full / "checkpoints" / "step-0000012" / "model.safetensors")
    for key, value in model.state_dict().items():  # 2 -> 1: the FSDP shards, read back whole
        torch.testing.assert_close(value, reference[key], atol=1e-5, rtol=0, msg=key)


@pytest.mark.slow
def test_a_failing_rank_stops_the_job_with_one_error_line(char_data, tmp_path):
    (tmp_path / "failing.py").write_text(FAILING)
    job = torchrun(2, run_args(char_data, tmp_path / "run"), tmp_path / "failing.py")
    _, stderr = job.communicate(timeout=120)
    assert job.returncode != 0
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: rank 1: shard train-0000.bin holds token id 900, outside the vocabulary"]
    assert "[rank0]" not in stderr and "[rank1]" not in stderr  # no worker traceback
    assert signal.SIGTERM.name in stderr  # torchrun stopped rank 0, which was waiting for rank 1


def test_rank_and_world_size_without_a_job_is_a_message_not_a_hang(tmp_path):
    with socket.socket() as s:  # a free port, where no other process of the job will ever come
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
           "GPTKIT_RENDEZVOUS_TIMEOUT": "1"}
    env.pop("TORCHELASTIC_RUN_ID", None)
    done = subprocess.run([sys.executable, "-m", "gptkit", "pretrain", "--preset", "tiny", "--out", str(tmp_path / "r")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: process 0 of 2 (RANK and WORLD_SIZE are set) found no job")
    assert "unset RANK and WORLD_SIZE" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "r").exists()  # nothing was written


@pytest.mark.parametrize("world", [1, 2, 4])
def test_the_ranks_shares_make_up_one_process_batches(char_data, world):
    # Each rank's micro-batch is its slice of the batch one process draws, at any world size.
    whole = WindowLoader(char_data, "train", 16, 8, seed=5)
    ranks = [WindowLoader(char_data, "train", 16, 8, seed=5) for _ in range(world)]
    for rank, loader in enumerate(ranks):
        loader.shard(rank, world)
    for _ in range(3):
        x, y = whole.next_batch()
        shares = [loader.next_batch() for loader in ranks]
        assert torch.equal(torch.cat([s[0] for s in shares]), x) and torch.equal(torch.cat([s[1] for s in shares]), y)
    assert all(loader.state_dict() == whole.state_dict() for loader in ranks)  # resumable at any world size


def test_a_batch_that_does_not_split_over_the_ranks_is_a_clear_error():
    with pytest.raises(GptkitError, match="--batch-size 6 does not split over 4 processes"):
        rank_rows(6, 0, 4)
