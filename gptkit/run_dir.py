"""Who may write where. Every command that writes a directory asks this module first, as every
reader asks gptkit.checkpoint what a directory is:

- one writer at a time: the command holds a lock in the directory for its whole life, and a second
  one is refused at once with the holder's pid, host and command. The lock is an flock, which the
  kernel drops when its holder dies, so a crashed run leaves no stale lock behind;
- a training run starts fresh only where no run is: an existing one is continued (``--resume``) or
  moved aside (``--overwrite``), never replaced or deleted;
- no output lands on an input, on the model being read, or on a directory of another kind.

Standard library only: ``gptkit prepare`` and ``gptkit tokenizer train`` ask it without PyTorch.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import json
import logging
import os
import shlex
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from gptkit.errors import GptkitError

LOCK = ".gptkit.lock"
LATEST = "latest"  # a training run: the name of its newest complete checkpoint
CHECKPOINTS = "checkpoints"
TRAIN_CONFIG = "train_config.json"  # a run's config, written when it starts and read by --resume
METRICS = "metrics.jsonl"
MODEL_CONFIG = "config.json"  # a model directory, gptkit's or Hugging Face's
DATA_META = "meta.json"  # a `gptkit prepare` directory
TOKENIZER_CONFIG = "tokenizer_config.json"
WRITTEN = ("meta.json", "merges.txt", "config.json", "train-00000.bin")  # files commands write that inputs might match
CACHE = "data"  # a run's copy of the bundled corpus, prepared once: --overwrite keeps it for the new run

log = logging.getLogger("gptkit")
_owned: dict[Path, int] = {}
KINDS = {"run": "a training run", "model": "a gptkit model", "hf-model": "a Hugging Face model",
         "data": "prepared data", "tokenizer": "a tokenizer"}  # directories this process holds -> the lock's file descriptor


def kind_of(directory: str | Path) -> str | None:
    """What a directory holds: "run", "model" (gptkit's), "hf-model" (Hugging Face's), "data",
    "tokenizer", or None (absent, empty or anything else)."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    if any((directory / name).exists() for name in (LATEST, CHECKPOINTS, TRAIN_CONFIG, METRICS)):
        return "run"
    if (directory / MODEL_CONFIG).is_file():
        try:
            gptkit = json.loads((directory / MODEL_CONFIG).read_bytes()).get("model_type") == "gptkit"
        except (ValueError, AttributeError):
            gptkit = False
        return "model" if gptkit else "hf-model"
    if (directory / DATA_META).is_file():
        return "data"
    if (directory / TOKENIZER_CONFIG).is_file():
        return "tokenizer"
    return None


def _holder(path: Path) -> str:
    """Who holds a lock, as its file says (written by the holder once it had the lock)."""
    try:
        info = json.loads(path.read_text())
        return f"pid {info['pid']} on {info['host']} (`{info['command']}`, since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another gptkit process"


def _in_use(directory: Path) -> GptkitError:
    return GptkitError(f"{directory} is in use by {_holder(directory / LOCK)}: wait for it to finish or stop it, "
                       "or write to another --out")


def check_free(directory: str | Path) -> None:
    """Refuse at once when another process holds ``directory``: commands call this before their slow
    start-up (loading PyTorch, a model), and take the lock itself (``owned``) when they write."""
    directory = Path(directory)
    if directory.resolve() in _owned:
        return
    try:
        fd = os.open(directory / LOCK, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: two checks at once never refuse each other
    except BlockingIOError:
        raise _in_use(directory) from None
    finally:
        os.close(fd)


def _lock(directory: Path) -> int:
    """The lock of ``directory``, held through the returned descriptor; refused at once if taken.

    The file is removed when released, so after taking the flock we check that the name still
    refers to the file we locked: otherwise its holder removed it between our open and our flock."""
    path = directory / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise _in_use(directory) from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        os.close(fd)
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    command = shlex.join(["gptkit" if program == "__main__.py" else program, *sys.argv[1:]])  # python -m gptkit
    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
            "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.ftruncate(fd, 0)
    os.write(fd, (json.dumps(info) + "\n").encode())
    return fd


def _unlock(directory: Path) -> None:
    fd = _owned.pop(directory)
    with contextlib.suppress(FileNotFoundError):
        (directory / LOCK).unlink()  # while still locked: a waiter that opened it sees the name gone
    os.close(fd)


@contextlib.contextmanager
def owned(directory: str | Path) -> Iterator[Path]:
    """Hold ``directory`` (made if missing) for the life of the block: the one writer it has.
    Re-entrant within a process, so a library call inside a command that holds it goes on."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = directory.resolve()
    if key in _owned:
        yield directory
        return
    _owned[key] = _lock(key)
    try:
        yield directory
    finally:
        if key in _owned:
            _unlock(key)


def check_output(out: str | Path, kind: str, inputs: Iterable[str | Path | None] = ()) -> None:
    """Refuse an ``out`` that another process holds, that holds a directory of another kind than the
    ``kind`` the command writes, or that is, contains or lies inside one of its ``inputs`` (files,
    directories, globs). Cheap: commands call it before their slow start-up."""
    out = Path(out).expanduser()
    check_free(out)
    if out.exists() and not out.is_dir():
        raise GptkitError(f"--out {out} is a file, not a directory: give a directory to write into")
    found = kind_of(out)
    if found is not None and found != kind:
        raise GptkitError(f"--out {out} holds {KINDS[found]}, and this command writes {KINDS[kind]}: writing there "
                          "would overwrite or mix them; give another --out")
    target = out.resolve()
    for source in inputs:
        if source is not None and _overlaps(target, str(source)):
            raise GptkitError(f"--out {out} overlaps the input {source}: the output would overwrite it or be read back "
                              "as input; give an --out outside it")


def check_output_file(out: str | Path | None, inputs: Iterable[str | Path | None] = ()) -> None:
    """Refuse an output *file* (results, a classifier) that is, or lies inside, one of the command's
    ``inputs``: through a symlink too, since the write lands on the link's target. Cheap: commands
    call it before loading anything. No ``out``, nothing to check."""
    if out is None:
        return
    target = Path(os.path.realpath(Path(out).expanduser()))
    for source in inputs:
        if source is None:
            continue
        spec, fixed = Path(source).expanduser(), _fixed_prefix(source)
        if fixed != spec:  # a glob: the output must not be a file it matches
            hit = fnmatch.fnmatch(str(target), str(fixed.resolve() / spec.relative_to(fixed)))
        else:  # a file or directory on disk (a model name that is not one overlaps nothing)
            hit = spec.exists() and (spec.resolve() == target or spec.resolve() in target.parents)
        if hit:
            raise GptkitError(f"--out {out} overlaps the input {source}: writing it would destroy the input; "
                              "give an --out outside it")


def _overlaps(target: Path, source: str) -> bool:
    """Whether the output directory ``target`` is, contains or lies inside the path ``source``, or
    would hold files that the glob ``source`` matches."""
    spec, fixed = Path(source).expanduser(), _fixed_prefix(source)
    if not fixed.exists():  # a model name, a bundled corpus: nothing on disk to overlap
        return False
    if fixed != spec:
        pattern = str(fixed.resolve() / spec.relative_to(fixed))
        recursive = "**" in pattern  # fnmatch's * crosses "/", as ** does; Path.match's does not, as * does
        return any(fnmatch.fnmatch(str(target / name), pattern) if recursive else (target / name).match(pattern)
                   for name in WRITTEN)
    path = spec.resolve()
    return path == target or target in path.parents or path in target.parents


def _fixed_prefix(spec: str | Path) -> Path:
    """The part of an input path before its first glob character ("books/*.txt" -> books)."""
    parts = Path(spec).expanduser().parts
    glob = next((i for i, part in enumerate(parts) if any(c in part for c in "*?[")), len(parts))
    return Path(*parts[:glob]) if glob else Path(".")


def describe_run(out: Path) -> str:
    """A run directory's state in a few words, for the messages below."""
    latest = out / LATEST
    if latest.is_file():
        return f"a run with checkpoint {latest.read_text(errors='replace').strip()}"
    return "a run that stopped before its first checkpoint"


def aside_name(out: Path) -> Path:
    """Where ``--overwrite`` moves an existing run: beside it, named by the time, never over anything."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = out.with_name(f"{out.name}.old-{stamp}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = out.with_name(f"{out.name}.old-{stamp}-{n}")
    return candidate


@contextlib.contextmanager
def training_run(out: str | Path, resume: bool, overwrite: bool,
                 inputs: Iterable[str | Path | None] = ()) -> Iterator[Path]:
    """Hold the run directory ``out`` for a training command and settle how the run starts in it:
    resumed, fresh where no run is, or fresh after the old run was moved aside (``overwrite``)."""
    out = Path(out)
    check_output(out, "run", inputs)
    with owned(out):
        if not resume and kind_of(out) == "run":
            if not overwrite:
                raise GptkitError(f"{out} already holds {describe_run(out)}: continue it with --resume, write to "
                                  "another --out, or add --overwrite to move it aside and start afresh")
            log.warning("moved the run that was in %s to %s", out, _move_aside(out))
        yield out


def _move_aside(out: Path) -> Path:
    """Rename the run in ``out`` (held by this process) to a new name beside it and hold the new
    ``out`` instead, with the cache moved back in. The lock travels with the rename, so nobody
    writes in either meanwhile."""
    key, aside = out.resolve(), aside_name(out)
    out.rename(aside)
    out.mkdir()
    old = _owned[key]
    _owned[key] = _lock(key)
    (aside / LOCK).unlink()
    os.close(old)
    if (aside / CACHE).is_dir():
        (aside / CACHE).rename(out / CACHE)
    return aside
