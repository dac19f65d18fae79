"""Crash-safe file writes and checked reads: no run killed mid-write loses data. No PyTorch here:
commands that only read and write files (prepare, tokenizer train) start in a fraction of a second."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gptkit.errors import GptkitError


def _file_mode() -> int:
    """0666 less the process umask: the mode open() gives a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


def fsync_dir(path: str | Path) -> None:
    """Make a rename inside ``path`` durable (POSIX); a no-op where directories cannot be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    A crash at any moment leaves either the old file or the new one, never a torn mix. A symlink at
    ``path`` is written through (its target is replaced, the link stays); anything there that is not
    a regular file (a directory, a FIFO, a device) is refused, never replaced.
    """
    path = output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600; the result should be as readable as any file the user writes
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise GptkitError(f"no space left to write {path} ({e.strerror}); it is unchanged: free some space or "
                          "write somewhere else") from None
    finally:
        tmp.unlink(missing_ok=True)


def output_file(path: str | Path) -> Path:
    """Where a write to ``path`` lands: the target of a symlink, and never something not a file."""
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():
        raise GptkitError(f"{path} exists and is not a regular file: gptkit will not replace it; "
                          "move it away or write somewhere else")
    return path


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_figure(fig, path: str | Path) -> Path:
    """A matplotlib figure written as write_text writes text: a kill mid-write leaves the old image."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png")
    return Path(path)


def read_text(path: str | Path, fix: str = "restore it or write it again") -> str:
    """A UTF-8 file gptkit or the user wrote; anything else is a one-line error saying ``fix``."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise GptkitError(f"{path} is not UTF-8 text (byte {e.start}); {fix}") from None
    except IsADirectoryError:
        raise GptkitError(f"{path} is a directory, not a file") from None


def read_json(path: str | Path, fix: str = "restore it or write it again", expect: type = dict):
    """The JSON value of a file (an object unless ``expect`` says otherwise), or a one-line error."""
    try:
        value = json.loads(read_text(path, fix))
    except json.JSONDecodeError as e:
        raise GptkitError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}); {fix}") from None
    if not isinstance(value, expect):
        kind = {dict: "an object", list: "an array"}.get(expect, expect.__name__)
        raise GptkitError(f"{path} must hold a JSON {kind}, not {type(value).__name__}; {fix}")
    return value
