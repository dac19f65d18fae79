"""Dialogue models as in DialoGPT: dialogue data and filters, training (forward and backward),
MMI reranking, and the interactive chat."""

from gptkit.chat.bot import Chatbot, ChatConfig
from gptkit.chat.data import read_dialogues
from gptkit.chat.examples import ExampleConfig
from gptkit.chat.filters import FilterConfig
from gptkit.chat.mmi import Hypothesis, rerank
from gptkit.chat.train import DialogueConfig, train_dialogue

__all__ = ["ChatConfig", "Chatbot", "DialogueConfig", "ExampleConfig", "FilterConfig", "Hypothesis",
           "read_dialogues", "rerank", "train_dialogue"]
