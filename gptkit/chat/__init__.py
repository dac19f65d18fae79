"""Dialogue models as in DialoGPT: dialogue data and filters, training (forward and backward),
MMI reranking, and the interactive chat."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gptkit.chat.bot import Chatbot, ChatConfig
    from gptkit.chat.data import read_dialogues
    from gptkit.chat.examples import ExampleConfig
    from gptkit.chat.filters import FilterConfig
    from gptkit.chat.mmi import Hypothesis, rerank
    from gptkit.chat.train import DialogueTrainConfig, train_dialogue

# Imported on first use: the server reranks with gptkit.chat.mmi and should not load the trainer
# (and matplotlib) to do so.
_API = {"Chatbot": "bot", "ChatConfig": "bot", "read_dialogues": "data", "ExampleConfig": "examples",
        "FilterConfig": "filters", "Hypothesis": "mmi", "rerank": "mmi", "DialogueTrainConfig": "train",
        "train_dialogue": "train"}

__all__ = ["ChatConfig", "Chatbot", "DialogueTrainConfig", "ExampleConfig", "FilterConfig", "Hypothesis",
           "read_dialogues", "rerank", "train_dialogue"]


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(f"gptkit.chat.{_API[name]}"), name)
    raise AttributeError(f"module 'gptkit.chat' has no attribute {name!r}")
