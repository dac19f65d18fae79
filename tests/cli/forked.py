"""Commands run as a user runs them, each in its own process, forked from a server that has imported
gptkit and PyTorch once (multiprocessing's forkserver): forty commands cost seconds rather than forty
interpreter start-ups, and each still has its own exit status, stdout and stderr, and is killed if it
outlives the bound.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

BOUND_S = 90  # generous: a loaded CI machine is slow, a hang is forever
FORKSERVER = mp.get_context("forkserver")
# torch._dynamo too: AdamW and meta-device model loading import it (2 s), in most of the commands below
FORKSERVER.set_forkserver_preload(["torch", "torch._dynamo", "gptkit.cli.main", "gptkit.checkpoint", "gptkit.inference"])


@dataclass
class Result:
    returncode: int | None
    stdout: str
    stderr: str


def _command(args: list[str], cwd: Path) -> None:
    """The child: stdout and stderr to files, then the `gptkit` entry point as a user runs it."""
    import torch

    from gptkit.cli.main import main

    os.chdir(cwd)
    torch.set_num_threads(1)
    for fd, name in ((1, "stdout"), (2, "stderr")):
        os.dup2(os.open(cwd / f".{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    sys.stdout, sys.stderr = open(1, "w", closefd=False), open(2, "w", closefd=False)
    sys.argv = ["gptkit", *args]
    main()


def gptkit(*args: str, cwd: Path) -> Result:
    proc = FORKSERVER.Process(target=_command, args=(list(args), cwd))
    proc.start()
    proc.join(BOUND_S)
    if proc.exitcode is None:
        proc.kill()
        proc.join()
        pytest.fail(f"gptkit {' '.join(args)} hung (no answer in {BOUND_S} s)")
    return Result(proc.exitcode, (cwd / ".stdout").read_text(errors="replace"),
                  (cwd / ".stderr").read_text(errors="replace"))
