"""The one decode engine: generate, chat, MMI candidates, eval generation and the server all decode here.

Three parts, as vLLM splits them: the *scheduler* here (which sequences join, which run, when one
slides past the context or leaves: plain Python, no tensors), the *runner* (gptkit.inference.runner:
how a forward pass runs, graphed or not) and the *sampler* (gptkit.inference.sampling: one batched
call per step, every row with its own settings). The KV cache is paged (gptkit.inference.blocks):
a sequence holds the blocks its tokens fill, and a prompt that starts like an earlier one (the next
turn of a chat) reuses that one's blocks and computes only what is new.

``step`` gives every running sequence one new token: sequences that join are prefilled (grouped by
length, at most PREFILL_TOKENS padded tokens a group), the others decode together.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable

import torch

from gptkit.errors import GptkitError
from gptkit.inference.blocks import Blocks, Holding
from gptkit.inference.runner import Runner
from gptkit.inference.sampling import Sampler, SamplingConfig
from gptkit.model import GPT

log = logging.getLogger("gptkit")
PREFILL_TOKENS = 8192  # most padded prompt tokens prefilled in one forward pass
BLOCK_LEN = 16  # positions per cache block


class Sequence:
    """One sequence to decode: its prompt and sampling settings, the tokens so far, where its keys are.

    Subclasses hear about each token (``on_token``) and the end (``on_finish``): the server streams them.
    """

    def __init__(self, prompt: list[int], cfg: SamplingConfig, logprobs: int | None = None):
        if not prompt:
            raise GptkitError("a sequence needs at least one prompt token")
        self.prompt, self.cfg, self.logprobs = prompt, cfg, logprobs
        self.tokens = list(prompt)  # what the model sees: the prompt, then generated tokens (the newest window)
        self.generated: list[int] = []
        self.cached = 0  # tokens whose keys are in the cache
        self.most = 0  # the most positions it takes in the cache (set when it joins)
        self.holding = Holding()
        self.ring: list[int] = []  # the ring blocks of its banded layers' keys (GPT-3's alternating attention)
        self.stop_reason: tuple[str, str | None] | None = None  # asked to stop: (reason, error)
        self.finish_reason: str | None = None

    @property
    def blocks(self) -> list[int]:
        return self.holding.blocks

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    def stop(self, reason: str = "cancelled", error: str | None = None) -> None:
        """Ask the engine to end this sequence before its next step (any thread)."""
        self.stop_reason = self.stop_reason or (reason, error)

    def on_token(self, token: int, logits: torch.Tensor | None) -> None:
        """A new token; ``logits`` (V,) are the raw next-token logits when ``logprobs`` was asked."""

    def on_finish(self, reason: str, error: str | None) -> None:
        """The end: "stop" (end-of-text), "length", "cancelled", or another reason with an error."""


class Engine:
    def __init__(self, model: GPT, max_batch: int = 16, eot_id: int | None = None, vocab_size: int | None = None,
                 kv_cache_tokens: int | None = None, prefix_cache: bool = True, use_cache: bool = True,
                 static: bool | None = None):
        """``max_batch`` sequences decode together; the cache holds ``kv_cache_tokens`` positions (by
        default every row's whole context). ``use_cache=False`` computes every step's window from
        scratch (the reference the cache must match); ``static`` decodes in fixed shapes (CUDA
        graphs; default: on CUDA)."""
        device = model.wte.weight.device
        context = model.config.block_size
        self.model, self.eot_id, self.context, self.use_cache = model, eot_id, context, use_cache
        n_blocks = -(-(kv_cache_tokens or max_batch * context) // BLOCK_LEN)
        banded = model.config.attention == "alternating"
        self.cache = model.new_kv_cache(n_blocks, BLOCK_LEN, rings=max_batch if banded else 0)
        # A banded layer's ring holds no prefix another sequence could take over: no prefix reuse then.
        self.blocks = Blocks(self.cache.blocks, BLOCK_LEN, prefix_cache and use_cache and not banded)
        R = self.cache.ring_len
        self.rings = [list(self.cache.rings[i * R: (i + 1) * R]) for i in range(max_batch)] if banded else []
        self.runner = Runner(model, self.cache, max_batch, device.type == "cuda" if static is None else static)
        self.sampler = Sampler(max_batch, vocab_size or model.config.vocab_size, device)
        self.max_batch = max_batch
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []  # row i of the sampler is running[i]

    def add(self, seqs: Iterable[Sequence]) -> None:
        for seq in seqs:
            if len(seq.prompt) > self.context:
                raise GptkitError(f"a prompt of {len(seq.prompt)} tokens exceeds the {self.context}-token context")
            self.waiting.append(seq)

    @torch.inference_mode()
    def step(self) -> list[Sequence]:
        """One new token for every running sequence (joining ones first prefilled); returns them.
        Sequences that finish leave, and free their rows and blocks."""
        self._drop_stopped()
        self._admit()
        if not self.running:
            return []
        for seq in self.running:
            self._fit(seq)
        stepped = [seq for rows in self._groups() for seq in self._run(rows)]
        self._leave()
        return stepped

    def _groups(self) -> list[list[int]]:
        """The running rows in forward passes: those with one new token together, then those with
        more (joining, or computed again), by length, at most PREFILL_TOKENS padded new tokens a pass
        (attention grows with a pass's size times its longest chunk squared)."""
        new = [len(seq.tokens) - seq.cached for seq in self.running]
        decoding = [row for row, n in enumerate(new) if n == 1]
        groups, group = [decoding] if decoding else [], []
        for row in sorted((row for row, n in enumerate(new) if n > 1), key=new.__getitem__):
            if group and (len(group) + 1) * new[row] > PREFILL_TOKENS:
                groups.append(group)
                group = []
            group.append(row)
        return groups + ([group] if group else [])

    def _drop_stopped(self) -> None:
        for seq in [s for s in self.waiting if s.stop_reason]:
            self.waiting.remove(seq)
            self._finish(seq, *seq.stop_reason)
        for seq in self.running:
            if seq.stop_reason and not seq.done:
                self._finish(seq, *seq.stop_reason)
        self._leave()

    def _admit(self) -> None:
        """Move waiting sequences into free rows while the cache can promise them their blocks."""
        while self.waiting and len(self.running) < self.max_batch:
            seq = self.waiting[0]
            seq.most = min(self.context, len(seq.prompt) + seq.cfg.max_new_tokens)
            holding = self.blocks.admit(seq.tokens, seq.most)
            if holding is None:
                if not self.running:
                    raise GptkitError(f"the KV cache ({self.cache.n_blocks * BLOCK_LEN} tokens) cannot hold a sequence "
                                      f"of {seq.most} tokens; give it more memory")
                return
            self.waiting.popleft()
            seq.holding, seq.cached = holding, len(holding.blocks) * BLOCK_LEN
            seq.ring = self.rings.pop() if self.rings else []
            try:
                self.sampler.set_row(len(self.running), seq.cfg, seq.tokens)
            except Exception as e:  # its own settings: it alone fails
                self.blocks.release(seq.holding)
                self.rings += [seq.ring] if seq.ring else []
                self._finish(seq, "error", f"decoding failed: {e}")
                continue
            self.running.append(seq)

    def _fit(self, seq: Sequence) -> None:
        """Make room for the sequence's next tokens: past the context its window slides to the newest
        half (computed again); without a cache every window is computed again."""
        if len(seq.tokens) > self.context:
            seq.tokens = seq.tokens[-(self.context // 2):]
        elif self.use_cache:
            return
        self.blocks.release(seq.holding)
        holding = self.blocks.admit(seq.tokens, seq.most)
        if holding is None:  # the blocks it shares with another sequence stay held: nothing came free
            raise GptkitError("the KV cache is too small to slide a sequence's window; give it more memory")
        seq.holding, seq.cached = holding, len(holding.blocks) * BLOCK_LEN

    def _run(self, rows: list[int]) -> list[Sequence]:
        seqs = [self.running[r] for r in rows]
        for seq in seqs:
            self.blocks.grow(seq.holding, len(seq.tokens))
        logits = self.runner.forward(seqs)
        for seq in seqs:
            seq.cached = len(seq.tokens)
            self.blocks.name(seq.holding, seq.tokens)
        tokens = self.sampler.sample(logits, rows).tolist()  # the one host sync of the step
        for seq, token, row_logits in zip(seqs, tokens, logits):
            seq.generated.append(token)
            seq.tokens.append(token)
            seq.on_token(token, row_logits if seq.logprobs is not None else None)
            if token == self.eot_id and seq.cfg.stop_at_eot:
                self._finish(seq, "stop")
            elif len(seq.generated) >= seq.cfg.max_new_tokens:
                self._finish(seq, "length")
        return seqs

    def _finish(self, seq: Sequence, reason: str, error: str | None = None) -> None:
        if not seq.done:
            seq.finish_reason = reason
            seq.on_finish(reason, error)

    def _leave(self) -> None:
        """Free the rows and blocks of finished sequences; the last row moves into a freed one."""
        for row in reversed(range(len(self.running))):
            seq = self.running[row]
            if not seq.done:
                continue
            self.blocks.release(seq.holding)
            if seq.ring:
                self.rings.append(seq.ring)
            last = len(self.running) - 1
            if row != last:
                self.running[row] = self.running[last]
                self.sampler.move(last, row)
            self.running.pop()

    def abort(self, error: str) -> None:
        """End every sequence in flight and waiting with ``error`` (the batch's forward pass failed)."""
        for seq in [*self.running, *self.waiting]:
            self._finish(seq, "error", error)
        self.waiting.clear()
        self._leave()

    def cancel(self, seqs: Iterable[Sequence]) -> None:
        """End ``seqs`` now (a caller that stops reading: a closed stream, Ctrl-C), freeing their rows."""
        for seq in seqs:
            seq.stop()
        self._drop_stopped()

    def run(self, seqs: list[Sequence]) -> None:
        """Decode ``seqs`` to their end (adding those not yet added)."""
        self.add(s for s in seqs if not (s.done or s in self.waiting or s in self.running))
        while not all(seq.done for seq in seqs):
            self.step()
