"""Sessions -> token examples as DialoGPT and GPT2-chitchat train them: the turns joined by
end-of-text, every response of a session trained with its history (as many earlier turns as fit,
or ``max_history``), the loss on the responses only (or on every turn), and a padded BatchSource.

A session that fits the context is one example whose loss covers all its responses at once, so
each response costs one forward pass however many turns precede it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from gptkit.chat.data import Dialogue
from gptkit.data.batches import EpochBatches, pad
from gptkit.errors import GptkitError
from gptkit.model.loss import IGNORE_INDEX
from gptkit.tokenizer import Tokenizer
from gptkit.train_config import DialogueTrainConfig

Example = tuple[list[int], list[int]]  # input ids, next-token labels


@dataclass
class ExampleConfig:
    max_history: int = DialogueTrainConfig.max_history  # turns of history before each response
    loss_on_all_turns: bool = False  # DialoGPT's default is the response only
    reverse: bool = False  # the backward (MMI) model: P(source | response)


# DialoGPT's format as a chat template (Jinja, as transformers applies it): every turn but system
# messages, each followed by end-of-text. A dialogue model's tokenizer carries it (Tokenizer.chat_template).
DIALOGUE_TEMPLATE = ("{% for message in messages %}{% if message['role'] != 'system' %}"
                     "{{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}")


def joined_ids(tokenizer: Tokenizer, turns: list[str]) -> list[int]:
    """Each turn followed by end-of-text: the prompt the response (or source) continues."""
    return [i for turn in turns for i in (*tokenizer.encode(turn, allow_special=False), tokenizer.eot_id)]


def newest_fitting(pieces: list[list[int]], cue: list[int], context: int, reserve: int) -> int:
    """Where the newest ``pieces`` (then ``cue``) that leave ``reserve`` tokens of the context start:
    a long conversation loses its oldest messages, not the reply its room. The latest piece always
    stays; only when even it leaves no token for the reply is it refused. The chat REPL and the
    server both fit a conversation with this."""
    size = len(pieces[-1]) + len(cue)
    if size >= context:
        raise GptkitError(f"the latest message alone makes a prompt of {size} tokens, and this model's context is "
                          f"{context} tokens, which must also hold the reply; shorten the message")
    start = len(pieces) - 1
    while start > 0 and size + len(pieces[start - 1]) <= context - reserve:
        start -= 1
        size += len(pieces[start])
    return start


def session_windows(lengths: list[int], max_history: int, block_size: int) -> Iterator[tuple[int, int, int]]:
    """(start, end, first) for each example of a session whose turns take ``lengths`` tokens (each with
    its end-of-text): turns ``start:end`` are read, the loss is on responses ``first:end``. Every
    response is scored once, with its ``max_history`` turns before it (0: all), fewer only where the
    context (``block_size`` + 1 tokens with the last label) cannot hold them; a response that does
    not fit with even one turn before it is skipped (start == end == first)."""
    cum = [0]
    for n in lengths:
        cum.append(cum[-1] + n)

    def fits(lo: int, hi: int) -> bool:
        return cum[hi] - cum[lo] <= block_size + 1

    i = 1
    while i < len(lengths):
        start = max(0, i - max_history) if max_history else 0
        while start < i - 1 and not fits(start, i + 1):
            start += 1
        if not fits(start, i + 1):
            yield i, i, i
            i += 1
            continue
        end = i + 1
        while end < len(lengths) and (not max_history or end - start <= max_history) and fits(start, end + 1):
            end += 1
        yield start, end, i
        i = end


def encode_window(pieces: list[list[int]], start: int, end: int, scored_from: int) -> Example:
    """Input ids and next-token labels of turns ``start:end``, IGNORE_INDEX wherever the next token
    is in a turn before ``scored_from``."""
    ids, scored = [], []
    for i in range(start, end):
        ids += pieces[i]
        scored += [i >= scored_from] * len(pieces[i])
    labels = [t if s else IGNORE_INDEX for t, s in zip(ids[1:], scored[1:])]
    return ids[:-1], labels


class _RememberingEncoder:
    """A tokenizer that encodes each distinct turn once: a turn recurs as history in up to
    ``max_history`` examples, and as the source of its own reply."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer, self.eot_id = tokenizer, tokenizer.eot_id
        self.seen: dict[tuple[str, bool], list[int]] = {}

    def encode(self, text: str, allow_special: bool = True) -> list[int]:
        key = (text, allow_special)
        if key not in self.seen:
            self.seen[key] = self.tokenizer.encode(text, allow_special)
        return self.seen[key]


def build_examples(sessions: list[Dialogue], tokenizer: Tokenizer, cfg: ExampleConfig,
                   block_size: int) -> tuple[list[Example], int]:
    """Token examples of the sessions, and how many responses did not fit the context even with one
    history turn. Too-long histories lose their oldest turns first; a response is never cut, so the
    model never learns a truncated answer. Reversed (the backward model), a session is read from its
    last turn back, so each earlier turn is predicted from the ones after it."""
    if tokenizer.eot_id is None:
        raise GptkitError("dialogue training needs an end-of-text token to join turns, which this vocabulary lacks")
    if cfg.max_history < 0:
        raise GptkitError(f"--max-history must be at least 0 (0: every earlier turn that fits), got {cfg.max_history}")
    tokenizer = _RememberingEncoder(tokenizer)
    examples, too_long = [], 0
    for turns in sessions:
        pieces = [joined_ids(tokenizer, [t]) for t in (turns[::-1] if cfg.reverse else turns)]
        for start, end, first in session_windows([len(p) for p in pieces], cfg.max_history, block_size):
            if start == end:
                too_long += 1
            else:
                examples.append(encode_window(pieces, start, end, start if cfg.loss_on_all_turns and start == 0 else first))
    return examples, too_long


def dialogue_batches(examples: list[Example], batch_size: int, pad_id: int, seed: int = 0,
                     width: int | None = None) -> EpochBatches[Example]:
    """A BatchSource of right-padded (inputs, labels): padding is never attended to by real tokens
    (attention is causal) and its labels are ignored, so no attention mask is needed. ``width``
    gives every batch one shape: a new shape each step makes the CPU kernels plan again."""

    def collate(rows: list[Example]) -> tuple[torch.Tensor, torch.Tensor]:
        return (pad([ids for ids, _ in rows], pad_id, width=width)[0],
                pad([labels for _, labels in rows], IGNORE_INDEX, width=width)[0])

    return EpochBatches(examples, batch_size, collate, seed)
