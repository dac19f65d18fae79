"""The server's side of the one decode engine (gptkit.inference.engine): a thread steps it over every
sequence in flight (continuous batching: a new sequence joins at the next step, a finished or
cancelled one leaves at once and frees its rows and cache blocks). Sequences wait in a bounded queue.

The event loop talks to the thread through each sequence: ``Engine.submit`` queues it, the thread
puts ``Token`` and ``Finish`` events on its request's asyncio queue, and ``Sequence.cancel`` (a
stop string, a client gone) takes it out before the next step.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass

import torch

from gptkit.errors import GptkitError
from gptkit.inference import engine as decode
from gptkit.inference.sampling import SamplingConfig
from gptkit.model import GPT, KVCache
from gptkit.serve.metrics import Metrics
from gptkit.tokenizer import Tokenizer

log = logging.getLogger("gptkit")


@dataclass
class EngineConfig:
    max_batch: int = 16  # sequences decoded together
    max_queue: int = 64  # sequences waiting to join; a request that would exceed it is refused
    kv_cache_memory: float | None = None  # GiB for the paged KV cache (None: every row's whole context)


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


class Sequence(decode.Sequence):
    """One choice to generate, whose tokens and end go to its request's event queue."""

    def __init__(self, index: int, prompt: list[int], cfg: SamplingConfig, events: asyncio.Queue,
                 logprobs: int | None = None, deadline: float = float("inf")):
        super().__init__(prompt, cfg, logprobs)
        self.index, self.events = index, events
        self.deadline = deadline  # time.monotonic() past which the sequence is ended with an error
        self.loop = asyncio.get_running_loop()
        self.last_token_at = time.monotonic()  # arrival, until the first token
        self.metrics: Metrics | None = None

    @property
    def cancelled(self) -> bool:
        return self.stop_reason is not None

    def cancel(self) -> None:
        """Stop generating (from the event loop): the engine drops the sequence before its next step."""
        self.stop("cancelled")

    def emit(self, event: Token | Finish) -> None:
        """Hand an event to the request (from the engine's thread)."""
        self.loop.call_soon_threadsafe(self.events.put_nowait, (self.index, event))

    def on_token(self, token: int, logits: torch.Tensor | None) -> None:
        now = time.monotonic()
        if self.metrics is not None:
            histogram = self.metrics.ttft if len(self.generated) == 1 else self.metrics.token_latency
            histogram.observe(now - self.last_token_at)
            self.metrics.completion_tokens.inc()
        self.last_token_at = now
        if token != self.eot_id or not self.cfg.stop_at_eot:
            self.emit(token_event(token, logits, self.logprobs))

    def on_finish(self, reason: str, error: str | None) -> None:
        self.emit(Finish(reason, error))


def token_event(token: int, logits: torch.Tensor | None, logprobs: int | None) -> Token:
    if logits is None or logprobs is None:
        return Token(token)
    lp = logits.float().log_softmax(-1)
    top = lp.topk(logprobs) if logprobs else None
    return Token(token, float(lp[token]), list(zip(top.indices.tolist(), top.values.tolist())) if top else [])


class Engine:
    def __init__(self, model: GPT, tokenizer: Tokenizer, cfg: EngineConfig, metrics: Metrics | None = None):
        self.eot_id, self.cfg, self.metrics = tokenizer.eot_id, cfg, metrics
        # the model's vocabulary may be padded: ids past the tokenizer's are never sampled
        tokens = None
        if cfg.kv_cache_memory is not None:
            c, p = model.config, model.wte.weight
            tokens = int(cfg.kv_cache_memory * 2**30) // KVCache.bytes_per_token(c.n_layer, c.n_head, c.head_dim, p.dtype)
            if tokens < c.block_size:
                raise GptkitError(f"--kv-cache-memory {cfg.kv_cache_memory:g} GiB holds {tokens} tokens, less than one "
                                  f"{c.block_size}-token context; give it at least "
                                  f"{c.block_size * (cfg.kv_cache_memory / max(tokens, 1)):.3g} GiB")
        self.decode = decode.Engine(model, cfg.max_batch, tokenizer.eot_id, tokenizer.vocab_size, tokens)
        self.pending: list[Sequence] = []  # submitted, not yet handed to the decode engine
        self.wakeup = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._run, name="gptkit-engine", daemon=True)

    @property
    def context(self) -> int:
        return self.decode.context

    @property
    def running(self) -> list[Sequence]:
        return self.decode.running

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
            waiting = self.queue_depth()
            if waiting + len(sequences) > self.cfg.max_queue:
                raise Busy(f"the server is busy: {waiting} sequences are waiting; try again shortly")
            for seq in sequences:
                seq.eot_id, seq.metrics = self.eot_id, self.metrics
            self.pending.extend(sequences)
            self.wakeup.notify()

    def queue_depth(self) -> int:
        return len(self.pending) + len(self.decode.waiting)

    def _run(self) -> None:
        while self._wait():
            try:
                self.decode.step()
            except Exception as e:  # the batch's forward pass (out of memory, a bug): fail what is in flight
                log.exception("decoding failed")
                self.decode.abort(f"decoding failed: {e}")

    def _wait(self) -> bool:
        """Hand new sequences to the decode engine and time out late ones; waits while there is
        nothing to do; False once the engine is closed."""
        with self.wakeup:
            while not (self.pending or self.decode.waiting or self.decode.running or self.closed):
                self.wakeup.wait()
            if self.closed:
                self.decode.abort("the server is shutting down")
                for seq in self.pending:
                    seq.on_finish("error", "the server is shutting down")
                return False
            for seq in self.pending:
                if len(seq.prompt) > self.context:  # the request checks this: a second line of defence
                    seq.on_finish("error", f"a prompt of {len(seq.prompt)} tokens exceeds the {self.context}-token context")
                else:
                    self.decode.add([seq])
            self.pending = []
        now = time.monotonic()
        for seq in [*self.decode.running, *self.decode.waiting]:
            if now > seq.deadline:
                seq.stop("timeout", "the request took longer than the server's time limit")
        return True
