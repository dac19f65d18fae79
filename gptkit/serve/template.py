"""Chat messages -> the prompt a model continues.

- ``dialogue`` (models trained by ``gptkit dialogue train``, DialoGPT): the turns' texts, each
  followed by end-of-text, as the model was trained; the reply ends at end-of-text. System messages
  are dropped (DialoGPT has none), and the oldest turns go first when the context is short.
- ``plain`` (any other language model): one line per message, ``System: ...``, ``User: ...``,
  ``Assistant: ...``, then ``Assistant:`` for the model to continue; the reply also ends where the
  model starts the user's next line (``\\nUser:``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gptkit.chat.examples import DIALOGUE_TEMPLATE, joined_ids
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


def render(template: str, tokenizer: Tokenizer, messages: list[Message], budget: int) -> Prompt:
    """The prompt for ``messages`` in at most ``budget`` tokens (the context less the reply)."""
    if template == "dialogue":
        return dialogue_prompt(tokenizer, [m.text for m in messages if ROLES[m.role] != "System"], budget)
    lines = [f"{ROLES[m.role]}: {m.text}\n" for m in messages]
    ids = tokenizer.encode("".join(lines) + "Assistant:", allow_special=False)
    return Prompt(check_fits(ids, budget), [], ["\nUser:"])


def dialogue_prompt(tokenizer: Tokenizer, turns: list[str], budget: int) -> Prompt:
    if not turns:
        raise ApiError(400, "messages must hold at least one user or assistant turn", "messages")
    turns = [" ".join(t.split()) for t in turns]
    while len(turns) > 1 and len(joined_ids(tokenizer, turns)) > budget:
        turns = turns[1:]
    return Prompt(check_fits(joined_ids(tokenizer, turns), budget), turns, [])


def check_fits(ids: list[int], budget: int) -> list[int]:
    if len(ids) > budget:
        raise ApiError(400, f"the prompt has {len(ids)} tokens, but only {budget} fit beside the reply in this "
                            "model's context; shorten the messages or lower max_tokens", "messages",
                       "context_length_exceeded")
    return ids
