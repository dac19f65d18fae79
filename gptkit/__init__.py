"""gptkit: the GPT family as one small, fast, correct codebase."""

from gptkit.checkpoint import load
from gptkit.config import PRESETS, GPTConfig
from gptkit.errors import GptkitError
from gptkit.model import GPT
from gptkit.tokenizer import Tokenizer

__all__ = ["GPT", "PRESETS", "GPTConfig", "GptkitError", "Tokenizer", "load"]
__version__ = "0.1.0"
