"""A chatbot: the conversation so far, turned into a prompt the way the model was trained, and a
reply streamed from the shared decoding loop (or picked from N samples by MMI)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

from gptkit.chat.data import normalize_turn
from gptkit.chat.examples import joined_ids, newest_fitting
from gptkit.chat.mmi import Hypothesis, check_same_tokenizer, rerank
from gptkit.errors import GptkitError
from gptkit.inference import SamplingConfig, generate_ids, generate_stream
from gptkit.inference.engine import Engine
from gptkit.inference.sampling import offset_seed
from gptkit.model import GPT
from gptkit.tokenizer import Tokenizer


@dataclass
class ChatConfig:
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(
        max_new_tokens=64, temperature=0.8, top_k=40))
    max_history: int = 2  # turns the model sees: the newest user turn and what came before it
    num_hypotheses: int = 8  # samples MMI chooses from

    def __post_init__(self) -> None:
        if self.max_history < 1 or self.num_hypotheses < 1:
            raise GptkitError("--max-history and --num-hypotheses must be at least 1")


class Chatbot:
    def __init__(self, model: GPT, tokenizer: Tokenizer, cfg: ChatConfig | None = None,
                 backward: tuple[GPT, Tokenizer] | None = None):
        if tokenizer.eot_id is None:
            raise GptkitError("chat needs an end-of-text token between turns, which this model's vocabulary lacks")
        if backward is not None:
            check_same_tokenizer(tokenizer, backward[1])
        self.model, self.tokenizer, self.cfg = model, tokenizer, cfg or ChatConfig()
        self.backward = backward[0] if backward else None
        self.history: list[str] = []
        self.hypotheses: list[Hypothesis] = []  # the last MMI ranking, best first
        self.turns = 0
        self.unknown: set[str] = set()  # characters already reported as outside the vocabulary
        # Kept across turns: a turn's prompt starts with the last one's, whose cached blocks it reuses.
        self.engine = Engine(model, self.cfg.num_hypotheses if backward else 1, tokenizer.eot_id, tokenizer.vocab_size)

    def reset(self) -> None:
        self.history = []

    def _source(self, text: str) -> tuple[list[str], list[int]]:
        """The newest turns, ending with ``text``, that fit beside the response (the oldest go first,
        as the server does); a message that alone leaves the response no room is refused."""
        turns = [*self.history, text][-self.cfg.max_history:]
        start = newest_fitting([joined_ids(self.tokenizer, [t]) for t in turns], [], self.model.config.block_size,
                               self.cfg.sampling.max_new_tokens)
        return turns[start:], joined_ids(self.tokenizer, turns[start:])

    def _sampling(self, prompt: list[int]) -> SamplingConfig:
        """A fresh seed per turn, so a seeded chat is reproducible without repeating itself; the reply
        shortened to the room the prompt leaves."""
        room = self.model.config.block_size - len(prompt)
        return dataclasses.replace(self.cfg.sampling, seed=offset_seed(self.cfg.sampling.seed, self.turns),
                                   max_new_tokens=min(self.cfg.sampling.max_new_tokens, room))

    def new_unknown(self, text: str) -> list[str]:
        """The characters of ``text`` the model cannot read that this chat has not reported yet (now
        reported): the chat REPL shows them in a note of its own before the reply."""
        return self.tokenizer.new_unknown(text, self.unknown)

    def reply(self, text: str) -> Iterator[str]:
        """Pieces of the reply to ``text`` as they are decoded; the history records both turns (a
        message refused as too long records neither). Characters outside the vocabulary not yet
        reported (``new_unknown``) are logged as a warning."""
        self.tokenizer.warn_unknown(text, self.unknown)
        text = normalize_turn(text)
        source, prompt = self._source(text)
        self.history.append(text)
        sampling, eot = self._sampling(prompt), self.tokenizer.eot_id
        self.turns += 1
        if self.backward is None:
            pieces = []
            for piece in generate_stream(self.model, self.tokenizer, prompt, sampling, self.engine):
                pieces.append(piece)
                yield piece
            response = "".join(pieces).strip()
        else:
            samples = generate_ids(self.model, [prompt] * self.cfg.num_hypotheses, sampling, eot, engine=self.engine)
            # Replies cut off at the length limit are unfinished; rank them only if no real reply finished.
            finished = [s for s in samples if 0 < len(s) < sampling.max_new_tokens]
            self.hypotheses = rerank(self.model, self.backward, self.tokenizer, source, finished or samples)
            response = self.hypotheses[0].text if self.hypotheses else ""
            yield response
        self.history.append(" ".join(response.split()))
