"""Starting a job the way a user does: `torchrun --nproc_per_node N -m gptkit ...` (on a free port)."""

import subprocess
import sys
from pathlib import Path

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]


def torchrun(nproc: int, args: list[str], script: Path | None = None, **popen) -> subprocess.Popen:
    program = [str(script)] if script else ["-m", "gptkit"]
    popen = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "text": True, **popen}
    return subprocess.Popen([*TORCHRUN, "--nproc_per_node", str(nproc), *program, *args], **popen)


def finish(*procs: subprocess.Popen) -> None:
    for proc in procs:
        _, err = proc.communicate()
        assert proc.returncode == 0, err
