"""gptkit: the GPT family as one small, fast, correct codebase."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from gptkit.errors import GptkitError

if TYPE_CHECKING:
    from gptkit.checkpoint import load
    from gptkit.config import PRESETS, GPTConfig
    from gptkit.model import GPT
    from gptkit.tokenizer import Tokenizer

# The API by name -> the module that defines it. Imported on first use, so that `gptkit --help` and
# a command refused for a bad flag answer at once instead of loading PyTorch first.
_API = {"GPT": "gptkit.model", "GPTConfig": "gptkit.config", "PRESETS": "gptkit.config",
        "Tokenizer": "gptkit.tokenizer", "load": "gptkit.checkpoint"}

__all__ = ["GPT", "PRESETS", "GPTConfig", "GptkitError", "Tokenizer", "load"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'gptkit' has no attribute {name!r}")
