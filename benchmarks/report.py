"""Print a benchmark result and append it, as one JSON line, to the file the user named.

The file is rewritten atomically (gptkit.io), so a run killed mid-write keeps every earlier line,
and a file that is not JSON lines (a script, a model, the data a benchmark read) is refused, never
appended to."""

from __future__ import annotations

import json
from pathlib import Path

from gptkit.errors import GptkitError
from gptkit.io import read_text, write_text


def results_so_far(path: str) -> str:
    """The JSON lines already in ``path`` ("" for a new file); a file that is anything else stops the run.
    Call it before measuring, so a wrong --out costs nothing."""
    try:
        old = read_text(path) if Path(path).exists() else ""
    except GptkitError as e:
        raise SystemExit(f"error: --out {e}") from None
    for number, line in enumerate(old.splitlines(), 1):
        try:
            json.loads(line)
        except json.JSONDecodeError:
            raise SystemExit(f"error: --out {path} is not a results file (line {number} is not JSON); "
                             "name a new file or one a benchmark wrote") from None
    return old


def emit(result: dict, path: str | None) -> None:
    print(json.dumps(result), flush=True)
    if path:
        old = results_so_far(path)
        write_text(path, old + ("\n" if old and not old.endswith("\n") else "") + json.dumps(result) + "\n")
