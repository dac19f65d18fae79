"""One request's generation: its sequences in the engine, and their tokens turned into text deltas
(stop strings cut, the sequence cancelled at once) for the response to stream or collect."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from gptkit.serve.engine import Finish, Sequence, Token
from gptkit.serve.models import ServedModel
from gptkit.serve.schema import Request
from gptkit.serve.text import ChoiceText


@dataclass
class Delta:
    """What one choice adds: text, the tokens that completed it, and how the choice ended."""

    index: int
    text: str = ""
    tokens: list[Token] = field(default_factory=list)
    finish_reason: str | None = None  # "stop" or "length" once the choice is done
    failure: Finish | None = None  # the choice failed: ran out of time, or decoding broke


class Generation:
    """The sequences of a request: ``n`` choices for each prompt, choice ``p * n + j`` for prompt ``p``."""

    def __init__(self, served: ServedModel, req: Request, prompts: list[list[int]], max_tokens: int,
                 stops: list[str], timeout: float, logprobs: int | None = None, lstrip: bool = False):
        events: asyncio.Queue = asyncio.Queue()
        deadline = time.monotonic() + timeout
        self.sequences = [Sequence(p * req.n + j, ids, req.sampling(max_tokens, j), events, logprobs, deadline)
                          for p, ids in enumerate(prompts) for j in range(req.n)]
        self.texts = [ChoiceText(served.tokenizer, stops, lstrip) for _ in self.sequences]
        self.events = events
        self.prompt_tokens = sum(map(len, prompts))
        self.completion_tokens = 0
        served.engine.submit(self.sequences)

    def cancel(self) -> None:
        for seq in self.sequences:
            seq.cancel()

    def usage(self, choices: list[Delta] | None = None) -> dict:
        """OpenAI's usage: every token generated, or only those of the ``choices`` a response keeps
        (MMI answers with one of several samples)."""
        completion = self.completion_tokens if choices is None else sum(len(c.tokens) for c in choices)
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
                "total_tokens": self.prompt_tokens + completion}

    async def deltas(self) -> AsyncIterator[Delta]:
        """Deltas as tokens arrive, until every choice has ended."""
        pending = set(range(len(self.sequences)))
        held: list[list[Token]] = [[] for _ in self.sequences]  # tokens whose text is not out yet
        while pending:
            index, event = await self.events.get()
            if index not in pending:
                continue  # a token the engine made before it saw the cancellation
            text = self.texts[index]
            if isinstance(event, Token):
                self.completion_tokens += 1
                held[index].append(event)
                piece = text.push(event.id)
                finish, failure = ("stop" if text.stopped else None), None
                if text.stopped:
                    self.sequences[index].cancel()
                elif not piece:
                    continue
            else:
                finish, failure = (None, event) if event.error else (event.reason, None)
                piece = "" if failure else text.flush()
            if finish or failure:
                pending.discard(index)
            yield Delta(index, piece, held[index], finish, failure)
            held[index] = []

    async def collect(self) -> list[Delta]:
        """Each choice's whole text, tokens and finish reason."""
        choices = [Delta(i) for i in range(len(self.sequences))]
        async for delta in self.deltas():
            choice = choices[delta.index]
            choice.text += delta.text
            choice.tokens += delta.tokens
            choice.finish_reason, choice.failure = delta.finish_reason, delta.failure
        return choices
