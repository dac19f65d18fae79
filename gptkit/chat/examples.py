"""Dialogues -> (history, response) pairs -> token examples as DialoGPT trains them: the turns joined
by end-of-text, the loss on the response only (or on every turn), and a padded BatchSource."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gptkit.chat.data import Dialogue
from gptkit.chat.filters import Pair
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


def dialogue_pairs(dialogues: list[Dialogue], max_history: int) -> list[Pair]:
    """Every turn after the first becomes a response to the up to ``max_history`` turns before it."""
    if max_history < 1:
        raise GptkitError(f"--max-history must be at least 1, got {max_history}")
    return [Pair(tuple(turns[max(0, i - max_history): i]), turns[i])
            for turns in dialogues for i in range(1, len(turns))]


def model_turns(pair: Pair, reverse: bool) -> list[str]:
    """The order the model reads: history then response; reversed, the response then the history
    from the newest turn back, so the backward model predicts the source from the hypothesis."""
    turns = [*pair.source, pair.target]
    return turns[::-1] if reverse else turns


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


def encode_example(tokenizer: Tokenizer, turns: list[str], loss_turns: range) -> tuple[list[int], list[int]]:
    """Input ids and next-token labels, IGNORE_INDEX wherever the next token is not in ``loss_turns``."""
    ids, scored = [], []
    for i, turn in enumerate(turns):
        piece = joined_ids(tokenizer, [turn])
        ids += piece
        scored += [i in loss_turns] * len(piece)
    labels = [t if s else IGNORE_INDEX for t, s in zip(ids[1:], scored[1:])]
    return ids[:-1], labels


def loss_turns(n_turns: int, cfg: ExampleConfig) -> range:
    """Which turns the loss covers: the response (forward), the source (reversed), or all of them."""
    if cfg.loss_on_all_turns:
        return range(n_turns)
    return range(1, n_turns) if cfg.reverse else range(n_turns - 1, n_turns)


def encode_pair(tokenizer: Tokenizer, pair: Pair, cfg: ExampleConfig) -> tuple[list[int], list[int]]:
    turns = model_turns(pair, cfg.reverse)
    return encode_example(tokenizer, turns, loss_turns(len(turns), cfg))


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


def build_examples(pairs: list[Pair], tokenizer: Tokenizer, cfg: ExampleConfig,
                   block_size: int) -> tuple[list[Example], int]:
    """Token examples of the pairs, and how many did not fit the context even with one history turn.

    Too-long histories lose their oldest turns first; a response is never cut, so the model never
    learns a truncated answer.
    """
    if tokenizer.eot_id is None:
        raise GptkitError("dialogue training needs an end-of-text token to join turns, which this vocabulary lacks")
    tokenizer = _RememberingEncoder(tokenizer)
    examples, too_long = [], 0
    for pair in pairs:
        ids, labels = encode_pair(tokenizer, pair, cfg)
        while len(ids) > block_size and len(pair.source) > 1:
            pair = Pair(pair.source[1:], pair.target)
            ids, labels = encode_pair(tokenizer, pair, cfg)
        if len(ids) > block_size:
            too_long += 1
        else:
            examples.append((ids, labels))
    return examples, too_long


def dialogue_batches(examples: list[Example], batch_size: int, pad_id: int, seed: int = 0) -> EpochBatches[Example]:
    """A BatchSource of right-padded (inputs, labels): padding is never attended to by real tokens
    (attention is causal) and its labels are ignored, so no attention mask is needed."""

    def collate(rows: list[Example]) -> tuple[torch.Tensor, torch.Tensor]:
        return pad([ids for ids, _ in rows], pad_id)[0], pad([labels for _, labels in rows], IGNORE_INDEX)[0]

    return EpochBatches(examples, batch_size, collate, seed)
