"""Chat messages -> the prompt a model continues.

- ``dialogue`` (models trained by ``gptkit dialogue train``, DialoGPT): the turns' texts, each
  followed by end-of-text, as the model was trained; the reply ends at end-of-text. System messages
  are dropped (DialoGPT has none).
- ``plain`` (any other language model): one line per message, ``System: ...``, ``User: ...``,
  ``Assistant: ...``, then ``Assistant:`` for the model to continue; the reply also ends where the
  model starts the user's next line (``\\nUser:``).

Both fit a conversation to the context as `gptkit chat` does (gptkit.chat.examples.newest_fitting):
the oldest messages go first, until the prompt leaves the reply its room.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gptkit.chat.data import normalize_turn
from gptkit.chat.examples import DIALOGUE_TEMPLATE, joined_ids, newest_fitting
from gptkit.errors import GptkitError
from gptkit.serve.schema import ApiError, Message
from gptkit.tokenizer import Tokenizer

TEMPLATES = ("auto", "dialogue", "plain")
ROLES = {"system": "System", "developer": "System", "user": "User", "assistant": "Assistant"}


@dataclass
class Prompt:
    ids: list[int]
    turns: list[str]  # the dialogue turns the prompt holds (the MMI model scores them)
    stops: list[str]  # stop strings the template adds


def pick_template(name: str, template: str, tokenizer: Tokenizer) -> str:
    """``auto``: dialogue for models trained by ``gptkit dialogue train`` (their tokenizer carries
    DialoGPT's template) and for published ones named so (microsoft/DialoGPT-medium); else plain."""
    if template != "auto":
        return template
    if tokenizer.chat_template == DIALOGUE_TEMPLATE:
        return "dialogue"
    return "dialogue" if "dialogpt" in Path(name.rstrip("/")).name.lower() else "plain"


def render(template: str, tokenizer: Tokenizer, messages: list[Message], context: int, reserve: int) -> Prompt:
    """The prompt for the newest ``messages`` that leave ``reserve`` of the ``context``'s tokens to
    the reply (the latest message is always kept, leaving the reply less if need be)."""
    if template == "dialogue":
        turns = [normalize_turn(m.text) for m in messages if ROLES[m.role] != "System"]  # as dialogues are trained
        if not turns:
            raise ApiError(400, "messages must hold at least one user or assistant turn", "messages")
        kept = _fitting([joined_ids(tokenizer, [t]) for t in turns], [], context, reserve)
        return Prompt(joined_ids(tokenizer, turns[kept:]), turns[kept:], [])
    lines = [tokenizer.encode(f"{ROLES[m.role]}: {m.text}\n", allow_special=False) for m in messages]
    cue = tokenizer.encode("Assistant:", allow_special=False)
    kept = _fitting(lines, cue, context, reserve)
    return Prompt([i for line in lines[kept:] for i in line] + cue, [], ["\nUser:"])


def _fitting(pieces: list[list[int]], cue: list[int], context: int, reserve: int) -> int:
    """gptkit.chat's newest_fitting, its refusal a 400 in OpenAI's terms."""
    try:
        return newest_fitting(pieces, cue, context, reserve)
    except GptkitError as e:
        raise ApiError(400, str(e), "messages", "context_length_exceeded") from None
