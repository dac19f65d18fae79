"""Print a benchmark result and append it, as one JSON line, to the file the user named."""

from __future__ import annotations

import json


def emit(result: dict, path: str | None) -> None:
    print(json.dumps(result))
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(result) + "\n")
