"""Continuous batching: one thread runs a decode step over every sequence in flight (gptkit's
``Slots`` cache and ``sample``); a new sequence joins at the next step, a finished or cancelled one
leaves at once and frees its cache row. Sequences wait in a bounded queue for a row.

The event loop talks to the thread through each sequence: ``Engine.submit`` queues it, the thread
puts ``Token`` and ``Finish`` events on its request's asyncio queue, and ``Sequence.cancel`` (a
stop string, a client gone) takes it out before the next step.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from gptkit.errors import GptkitError
from gptkit.inference.decoder import Slots
from gptkit.inference.sampling import SamplingConfig, sample
from gptkit.model import GPT
from gptkit.serve.metrics import Metrics
from gptkit.tokenizer import Tokenizer

log = logging.getLogger("gptkit")
PREFILL_TOKENS = 8192  # most padded prompt tokens prefilled in one forward pass


@dataclass
class EngineConfig:
    max_batch: int = 16  # sequences decoded together: the cache's rows
    max_queue: int = 64  # sequences waiting for a row; a request that would exceed it is refused


class Busy(GptkitError):
    """The queue is full: try again shortly."""


class TooMany(GptkitError):
    """A request with more sequences than the queue holds: no retry can help."""


@dataclass
class Token:
    id: int
    logprob: float | None = None  # log P(token) under the model, when the request asked for logprobs
    top: list[tuple[int, float]] | None = None  # the most likely tokens and their log-probabilities


@dataclass
class Finish:
    reason: str  # "stop" (end-of-text), "length", "cancelled" (as asked); "timeout" or "error" with a message
    error: str | None = None


class Sequence:
    """One choice to generate: a prompt, its sampler settings, and the queue its events go to."""

    def __init__(self, index: int, prompt: list[int], cfg: SamplingConfig, events: asyncio.Queue,
                 logprobs: int | None = None, deadline: float = float("inf")):
        self.index, self.prompt, self.cfg, self.events, self.logprobs = index, prompt, cfg, events, logprobs
        self.deadline = deadline  # time.monotonic() past which the sequence is ended with an error
        self.loop = asyncio.get_running_loop()
        self.cancelled = self.done = False
        self.generated: list[int] = []
        self.last_token_at = time.monotonic()  # arrival, until the first token
        self.generator: torch.Generator | None = None
        self.seen: torch.Tensor | None = None  # (1, V): tokens in the prompt or generated (repetition penalty)
        self.counts: torch.Tensor | None = None  # (1, V): how often each token was generated (OpenAI's penalties)

    def cancel(self) -> None:
        """Stop generating (from the event loop): the engine drops the sequence before its next step."""
        self.cancelled = True

    def emit(self, event: Token | Finish) -> None:
        """Hand an event to the request (from the engine's thread)."""
        self.loop.call_soon_threadsafe(self.events.put_nowait, (self.index, event))

    def finish(self, reason: str, error: str | None = None) -> None:
        self.done = True
        self.emit(Finish(reason, error))

    def prepare(self, vocab_size: int, device: torch.device) -> None:
        """The sampler's per-sequence state: its own random generator (same seed, same output,
        whatever else is in the batch) and the token statistics its penalties need."""
        if self.cfg.seed is not None:
            self.generator = torch.Generator(device).manual_seed(self.cfg.seed)
        if self.cfg.repetition_penalty != 1.0:
            self.seen = torch.zeros(1, vocab_size, dtype=torch.bool, device=device)
            self.seen[0, self.prompt] = True
        if self.cfg.penalizes_counts:
            self.counts = torch.zeros(1, vocab_size, device=device)


class Engine:
    def __init__(self, model: GPT, tokenizer: Tokenizer, cfg: EngineConfig, metrics: Metrics | None = None):
        self.model, self.eot_id, self.cfg, self.metrics = model, tokenizer.eot_id, cfg, metrics
        self.vocab_size = tokenizer.vocab_size  # the model's may be padded: ids past the tokenizer's are never sampled
        self.slots = Slots(model, cfg.max_batch)
        self.running: list[Sequence] = []  # the sequence in each cache row
        self.waiting: deque[Sequence] = deque()
        self.wakeup = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._run, name="gptkit-engine", daemon=True)

    @property
    def context(self) -> int:
        return self.slots.max_len

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """End the thread; sequences still in flight end with an error."""
        with self.wakeup:
            self.closed = True
            self.wakeup.notify()
        self.thread.join()

    def submit(self, sequences: list[Sequence]) -> None:
        """Queue a request's sequences, all or none: Busy when the queue has no room for them now,
        TooMany when it never will."""
        if len(sequences) > self.cfg.max_queue:
            raise TooMany(f"the request asks for {len(sequences)} sequences (n choices for each prompt), more than the "
                          f"{self.cfg.max_queue} this server queues (--max-queue); ask for fewer")
        with self.wakeup:
            if len(self.waiting) + len(sequences) > self.cfg.max_queue:
                raise Busy(f"the server is busy: {len(self.waiting)} sequences are waiting; try again shortly")
            self.waiting.extend(sequences)
            self.wakeup.notify()

    def queue_depth(self) -> int:
        return len(self.waiting)

    def _run(self) -> None:
        with torch.inference_mode():
            while (joining := self._next_joining()) is not None:
                try:
                    self._join(joining)
                    self._leave()
                    if self.running:
                        self._step()
                except Exception as e:  # the batch's forward pass (out of memory, a bug): fail what is in flight
                    log.exception("decoding failed")
                    for seq in {*self.running, *joining}:
                        if not seq.done:
                            seq.finish("error", f"decoding failed: {e}")
                    self._leave()

    def _next_joining(self) -> list[Sequence] | None:
        """Sequences to start now (as many as there are free rows); waits while there is nothing to
        do; None once the engine is closed."""
        with self.wakeup:
            while not (self.waiting or self.running or self.closed):
                self.wakeup.wait()
            if self.closed:
                for seq in [*self.running, *self.waiting]:
                    seq.finish("error", "the server is shutting down")
                return None
            joining = []
            while self.waiting and len(self.running) + len(joining) < self.slots.capacity:
                seq = self.waiting.popleft()
                if seq.cancelled:
                    seq.finish("cancelled")
                else:
                    joining.append(seq)
            return joining

    def _join(self, joining: list[Sequence]) -> None:
        """Prefill the joining sequences together, in groups of at most PREFILL_TOKENS padded tokens
        (the attention of a group grows with its size times its longest prompt squared)."""
        group: list[Sequence] = []
        for seq in sorted(joining, key=lambda seq: len(seq.prompt)):
            if group and (len(group) + 1) * len(seq.prompt) > PREFILL_TOKENS:
                self._prefill(group)
                group = []
            group.append(seq)
        if group:
            self._prefill(group)

    def _prefill(self, group: list[Sequence]) -> None:
        for seq in group:
            with alone(seq):
                seq.prepare(self.vocab_size, self.model.wte.weight.device)
        group = [seq for seq in group if not seq.done]
        if not group:
            return
        logits = self.slots.add([seq.prompt for seq in group])
        self.running.extend(group)
        for seq, row in zip(group, logits):
            with alone(seq):
                self._pick(seq, row[None])

    def _step(self) -> None:
        device = self.model.wte.weight.device
        tokens = torch.tensor([seq.generated[-1] for seq in self.running], device=device)
        logits = self.slots.step(tokens)
        for row, seq in enumerate(self.running):
            with alone(seq):
                self._pick(seq, logits[row: row + 1])

    def _pick(self, seq: Sequence, logits: torch.Tensor) -> None:
        """Sample the sequence's next token from its logits (1, V) and hand it over."""
        logits = logits[:, : self.vocab_size]
        token = int(sample(logits, seq.cfg, seq.generator, seq.seen, counts=seq.counts)[0])
        seq.generated.append(token)
        if seq.seen is not None:
            seq.seen[0, token] = True
        if seq.counts is not None:
            seq.counts[0, token] += 1
        self._observe(seq)
        if token == self.eot_id and seq.cfg.stop_at_eot:
            return seq.finish("stop")
        seq.emit(self._token(token, logits, seq.logprobs))
        if len(seq.generated) == seq.cfg.max_new_tokens:
            seq.finish("length")

    @staticmethod
    def _token(token: int, logits: torch.Tensor, logprobs: int | None) -> Token:
        if logprobs is None:
            return Token(token)
        lp = logits[0].float().log_softmax(-1)
        top = lp.topk(logprobs) if logprobs else None
        return Token(token, float(lp[token]), list(zip(top.indices.tolist(), top.values.tolist())) if top else [])

    def _observe(self, seq: Sequence) -> None:
        now = time.monotonic()
        if self.metrics is not None:
            histogram = self.metrics.ttft if len(seq.generated) == 1 else self.metrics.token_latency
            histogram.observe(now - seq.last_token_at)
            self.metrics.completion_tokens.inc()
        seq.last_token_at = now

    def _leave(self) -> None:
        """Free the rows of sequences that finished, were cancelled or ran out of time."""
        now = time.monotonic()
        for row in reversed(range(len(self.running))):
            seq = self.running[row]
            if not seq.done and seq.cancelled:
                seq.finish("cancelled")
            elif not seq.done and now > seq.deadline:
                seq.finish("timeout", "the request took longer than the server's time limit")
            if seq.done:
                moved = self.slots.remove(row)
                if moved is not None:
                    self.running[row] = self.running[moved]
                self.running.pop()


@contextmanager
def alone(seq: Sequence) -> Iterator[None]:
    """A failure in one sequence's own work (its sampler, its settings) ends that sequence alone: the
    others in the batch decode on, token for token as they would have."""
    try:
        yield
    except Exception as e:
        log.exception("decoding one sequence failed")
        seq.finish("error", f"decoding failed: {e}")
