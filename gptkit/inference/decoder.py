"""The decoding state of a batch and the one step that advances it: model + sampler over a KV cache.

Everything a step touches lives in preallocated tensors (the cache, the tokens in its slots, the next
input token and its slot, which rows finished, which tokens each row has seen), and ``step`` only
updates them in place. On CUDA that step is captured once as a CUDA graph and replayed per token;
on the CPU the very same function runs eagerly, with attention over the filled part of the cache
only. Prefill (the prompt, or the window after a slide) runs eagerly outside the graph.

``Slots`` is the same model-over-a-cache step for continuous batching (the server's engine):
sequences take a cache row each, join and leave between steps, and each row has its own position.
"""

from __future__ import annotations

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from gptkit.errors import GptkitError
from gptkit.inference.sampling import SamplingConfig, sample
from gptkit.model import GPT

# cuDNN attention plans anew for every new shape (tens of ms in bf16); prefill shapes vary per prompt
PREFILL_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


class Decoder:
    """Left-padded prompts (each at most the context long), prefilled, with their first token sampled.

    ``static`` (default: on CUDA) attends over every cache slot so the step keeps its shapes, and is
    captured as a CUDA graph where CUDA is present; otherwise the step reads only the filled slots,
    and rows that finish are dropped from the batch.
    """

    def __init__(self, model: GPT, prompts: list[list[int]], cfg: SamplingConfig, pad_id: int,
                 eot_id: int | None, use_cache: bool = True, static: bool | None = None):
        device = model.wte.weight.device
        self.model, self.cfg, self.pad_id, self.eot_id = model, cfg, pad_id, eot_id
        self.static = device.type == "cuda" if static is None else static
        self.graphed = self.static and device.type == "cuda"
        self.batch_size = B = len(prompts)
        L = max(len(p) for p in prompts)
        # Slots: the whole output when it fits the context (then no slide ever happens), else the context.
        self.slots = min(model.config.block_size, L + cfg.max_new_tokens)
        self.tokens = torch.full((B, self.slots), pad_id, dtype=torch.long, device=device)  # the token in each slot
        self.valid = torch.zeros((B, self.slots), dtype=torch.bool, device=device)  # ... and whether it is real
        for i, p in enumerate(prompts):
            self.tokens[i, L - len(p): L] = torch.tensor(p)
            self.valid[i, L - len(p): L] = True
        self.cache = model.new_kv_cache(B, self.slots, static=self.static) if use_cache else None
        self.end = L  # slots [0, end) are filled; the next input token goes to slot ``end``
        self.pos = torch.tensor([L], device=device)  # ``end`` on the device, for the graph
        self.token = torch.zeros(B, dtype=torch.long, device=device)  # the next input: the last sampled token
        self.finished = torch.zeros(B, dtype=torch.bool, device=device)
        self.rows = torch.arange(B, device=device)  # the caller's row of each row still decoding
        self.seen = None  # (B, V): tokens the repetition penalty applies to
        if cfg.repetition_penalty != 1.0:
            counts = torch.zeros(B, model.config.vocab_size, device=device)
            self.seen = counts.scatter_add_(1, self.tokens, self.valid.float()) > 0
        # (B, V): how often each row generated each token, for the presence/frequency penalties
        self.counts = torch.zeros(B, model.config.vocab_size, device=device) if cfg.penalizes_counts else None
        self.generator = torch.Generator(device).manual_seed(cfg.seed) if cfg.seed is not None else None
        self.graph = None
        self.prefill()

    def prefill(self) -> None:
        """Run the model over slots [0, end) (into an emptied cache) and sample the next token."""
        ids, mask = self.tokens[:, : self.end], self.valid[:, : self.end]
        input_pos = None
        if self.cache is not None:
            self.cache.reset()
            input_pos = torch.arange(self.end, device=ids.device)
        with sdpa_kernel(PREFILL_BACKENDS):
            hidden = self.model(ids, mask, self.cache, input_pos, return_hidden=True)  # (B, T, n_embd)
        self.pos.fill_(self.end)
        self.token.copy_(self.pick(self.model.lm_head(hidden[:, -1])))  # only the last position's logits

    def advance(self) -> None:
        """Feed the last sampled token, sample the next. Past the context the window slides: the
        cache is refilled with the newest half of it."""
        if self.cache is not None and self.end < self.slots:
            self.run_step()
            self.end += 1
            return
        if self.end == self.slots:
            keep = self.slots // 2 - 1  # plus the input token: half the context
            self.tokens[:, :keep] = self.tokens[:, self.end - keep: self.end].clone()
            self.valid[:, :keep] = self.valid[:, self.end - keep: self.end].clone()
            self.end = keep
        self.tokens[:, self.end] = self.token
        self.valid[:, self.end] = True
        self.end += 1
        self.prefill()

    def run_step(self) -> None:
        if not self.graphed:
            self.step()
        elif self.graph is None:  # the first step runs eagerly on a side stream (warm-up), then is captured
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self.step()
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            if self.generator is not None:
                self.graph.register_generator_state(self.generator)
            with torch.cuda.graph(self.graph):
                self.step()  # recorded, not run
        else:
            self.graph.replay()

    def step(self) -> None:
        """Feed the input token at slot ``pos`` and sample the next one: fixed shapes, no host sync."""
        self.tokens.index_copy_(1, self.pos, self.token[:, None])
        self.valid.index_fill_(1, self.pos, True)
        logits = self.model(self.token[:, None], kv_cache=self.cache, input_pos=self.pos)[:, -1]  # (B, V)
        self.pos += 1
        self.token.copy_(self.pick(logits))

    def pick(self, logits: torch.Tensor) -> torch.Tensor:
        """The sampler: next-token logits (B, V) -> next tokens (B,); finished rows get padding."""
        rows = self.rows if len(self.rows) < self.batch_size else None  # some rows were dropped
        token = sample(logits, self.cfg, self.generator, self.seen, rows, self.batch_size, self.counts)
        token = torch.where(self.finished, self.pad_id, token)
        if self.eot_id is not None:
            self.finished |= token == self.eot_id
        if self.seen is not None:
            self.seen.scatter_(1, token[:, None], True)
        if self.counts is not None:
            self.counts.scatter_add_(1, token[:, None], torch.ones_like(token[:, None], dtype=self.counts.dtype))
        return token

    def output(self) -> torch.Tensor:
        """The last sampled token of each of the caller's rows, (B,); rows already dropped get padding."""
        if len(self.rows) == self.batch_size:
            return self.token.clone()  # a copy: the next step overwrites ``token`` in place
        out = torch.full((self.batch_size,), self.pad_id, dtype=torch.long, device=self.token.device)
        return out.index_copy_(0, self.rows, self.token)

    def drop_finished(self) -> None:
        """Stop decoding finished rows once a quarter of the batch has (eager decoding only)."""
        if self.graphed or self.cache is None or 4 * int(self.finished.sum()) < len(self.finished):
            return
        keep = (~self.finished).nonzero().squeeze(1)
        self.cache.keep(keep)
        self.tokens, self.valid, self.token, self.finished, self.rows = (
            t[keep] for t in (self.tokens, self.valid, self.token, self.finished, self.rows))
        if self.seen is not None:
            self.seen = self.seen[keep]
        if self.counts is not None:
            self.counts = self.counts[keep]


class Slots:
    """A fixed number of cache rows that sequences take and leave between steps, each at its own position.

    The rows in use are kept packed at the front, [0, active), so a step runs the model over
    exactly them; a sequence that leaves is replaced by the last one (``remove``). Every sequence
    must fit the cache (prompt plus new tokens at most ``max_len``): there is no sliding window here.
    Sampling is the caller's, with ``sample``, as each sequence may sample differently.
    """

    def __init__(self, model: GPT, capacity: int, max_len: int | None = None):
        self.model = model
        self.cache = model.new_kv_cache(capacity, max_len, static=False)
        self.lengths = torch.zeros(capacity, dtype=torch.long)  # tokens cached in each row
        self.active = 0

    @property
    def capacity(self) -> int:
        return self.cache.batch_size

    @property
    def max_len(self) -> int:
        return self.cache.max_len

    def add(self, prompts: list[list[int]]) -> torch.Tensor:
        """Prefill ``prompts`` together into the next free rows (from row ``active`` before the call);
        their next-token logits (len(prompts), V). Shorter prompts are padded at the end: padding is
        marked empty, and each row's first step writes over it from the slot after its prompt."""
        n, start = len(prompts), self.active
        if start + n > self.capacity or not all(0 < len(p) < self.max_len for p in prompts):
            raise GptkitError(f"no room for prompts of {[len(p) for p in prompts]} tokens ({start} of {self.capacity} "
                              f"rows in use, {self.max_len} slots each)")
        device = self.model.wte.weight.device
        lengths = torch.tensor([len(p) for p in prompts])
        T = int(lengths.max())
        ids = torch.zeros(n, T, dtype=torch.long)
        for row, prompt in enumerate(prompts):
            ids[row, : len(prompt)] = torch.tensor(prompt)
        view = self.cache.rows(start, start + n)
        view.reset()
        mask = torch.arange(T) < lengths[:, None]  # (n, T): the real tokens
        with sdpa_kernel(PREFILL_BACKENDS):
            hidden = self.model(ids.to(device), mask.to(device), view, torch.arange(T, device=device),
                                return_hidden=True)  # (n, T, n_embd)
        self.lengths[start: start + n] = lengths
        self.active += n
        return self.model.lm_head(hidden[torch.arange(n), lengths - 1])  # each prompt's last token only

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed each row in use its next token, (active,); their next-token logits (active, V)."""
        n = self.active
        if int(self.lengths[:n].max()) >= self.max_len:
            raise GptkitError(f"a sequence reached the {self.max_len} slots of its cache row")
        pos = self.lengths[:n, None].to(tokens.device)  # (n, 1): each row writes at its own slot
        logits = self.model(tokens[:, None], kv_cache=self.cache.rows(0, n), input_pos=pos)[:, -1]
        self.lengths[:n] += 1
        return logits

    def remove(self, row: int) -> int | None:
        """Free ``row``; the last row in use moves into it. Returns the row that moved there, or None."""
        last = self.active - 1
        self.active = last
        if row == last:
            return None
        self.cache.move(last, row)
        self.lengths[row] = self.lengths[last]
        return last
