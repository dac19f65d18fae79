"""The logits-processor chain and the sampler: the one place that turns logits into a next token."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gptkit.errors import GptkitError

MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed takes a uint64 (negative ones wrap)
GREEDY_BELOW = 1e-5  # dividing logits by a smaller temperature overflows them: such a temperature is greedy


def offset_seed(seed: int | None, offset: int) -> int | None:
    """The seed of sample number ``offset`` (a choice, a turn): past MAX_SEED it wraps to 0."""
    return None if seed is None else (seed + offset) % (MAX_SEED + 1)


@dataclass
class SamplingConfig:
    max_new_tokens: int = 200
    temperature: float = 1.0  # 0 (or below GREEDY_BELOW) means greedy (argmax)
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0  # CTRL's penalty; 1.0 is off
    presence_penalty: float = 0.0  # OpenAI's: subtracted once from a token already generated
    frequency_penalty: float = 0.0  # ... and this times how often it was generated
    stop_at_eot: bool = True
    seed: int | None = None

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Refuse settings the sampler cannot use (also when set after construction), naming the flag."""
        for name in ("temperature", "top_p", "repetition_penalty", "presence_penalty", "frequency_penalty"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise GptkitError(f"--{name.replace('_', '-')} must be a finite number, got {value}")
        if self.temperature < 0:
            raise GptkitError(f"--temperature must be >= 0 (0 is greedy), got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise GptkitError(f"--top-k must be >= 1, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise GptkitError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise GptkitError(f"--repetition-penalty must be > 0, got {self.repetition_penalty}")
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            raise GptkitError(f"--seed must be in 0..{MAX_SEED}, got {self.seed}")
        if self.max_new_tokens < 0:
            raise GptkitError(f"--max-new-tokens must be >= 0, got {self.max_new_tokens}")

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW

    @property
    def penalizes_counts(self) -> bool:
        """Whether sampling needs the counts of the tokens generated so far."""
        return self.presence_penalty != 0 or self.frequency_penalty != 0


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
    """Make every token ``seen`` (B, V bool) already less likely, by each row's ``penalty`` (B, 1),
    whatever the sign of its logit: dividing a negative logit would make it *more* likely, so
    negative logits are multiplied."""
    penalized = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalized, logits)


def top_k_filter(logits: torch.Tensor, k: torch.Tensor, k_max: int) -> torch.Tensor:
    """Keep each row's ``k`` (B,) likeliest tokens (a row with k = 0 keeps all); ``k_max`` >= every k."""
    V = logits.shape[-1]
    k = k.clamp(max=V)
    top = torch.topk(logits, min(k_max, V), dim=-1).values  # (B, k_max)
    kth = top.gather(1, (k - 1).clamp(min=0)[:, None])
    kth = torch.where(k[:, None] > 0, kth, float("-inf"))
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Nucleus sampling: keep the smallest set of tokens whose probability adds up to at least each
    row's ``p`` (B,); a row with p = 1 keeps all."""
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    probs = sorted_logits.softmax(-1)
    drop = (probs.cumsum(-1) - probs >= p[:, None]) & (p[:, None] < 1)  # mass before this token already reaches p
    drop[:, 0] = False  # the likeliest token always stays: a p below float32's least (1e-300) would drop it too
    return logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))


def apply_count_penalties(logits: torch.Tensor, counts: torch.Tensor, presence: torch.Tensor,
                          frequency: torch.Tensor) -> torch.Tensor:
    """OpenAI's presence and frequency penalties (B, 1); ``counts`` (B, V) counts each generated token."""
    return logits - counts * frequency - (counts > 0).float() * presence


def f32(x: float) -> float:
    """``x`` within float32's range (a setting of 1e300 is float32's largest, as good as infinite here)."""
    big = torch.finfo(torch.float32).max
    return max(-big, min(big, x))


class Sampler:
    """The one sampler: next tokens for a batch of rows in one call, each row with its own settings
    (kept as tensors), its own random generator and its own token statistics, and no host sync.

    Rows are the engine's: ``set_row`` gives a row to a sequence, ``move`` packs them. A seeded row's
    draws come from its own generator alone, so it samples the same tokens beside any others.
    Sampling divides the probabilities by exponential noise and takes the argmax: the draws
    torch.multinomial makes, without its host synchronisation.
    """

    def __init__(self, rows: int, vocab_size: int, device: torch.device):
        self.vocab_size, self.device = vocab_size, device
        self.cfgs: list[SamplingConfig | None] = [None] * rows
        self.generators: list[torch.Generator | None] = [None] * rows
        f32 = dict(device=device, dtype=torch.float32)
        self.temperature, self.top_p = torch.ones(rows, **f32), torch.ones(rows, **f32)
        self.repetition = torch.ones(rows, **f32)
        self.presence, self.frequency = torch.zeros(rows, **f32), torch.zeros(rows, **f32)
        self.top_k = torch.zeros(rows, dtype=torch.long, device=device)
        self.greedy = torch.ones(rows, dtype=torch.bool, device=device)
        self.seen = torch.zeros(rows, vocab_size, dtype=torch.bool, device=device)  # in the prompt or generated
        self.counts = torch.zeros(rows, vocab_size, **f32)  # how often each token was generated

    def set_row(self, row: int, cfg: SamplingConfig, prompt: list[int]) -> None:
        """Row ``row`` now samples for a sequence with ``prompt`` and settings ``cfg``."""
        cfg.check()
        generator = None
        if cfg.seed is not None:
            generator = torch.Generator(self.device).manual_seed(cfg.seed)
        self.cfgs[row], self.generators[row] = cfg, generator
        self.temperature[row], self.top_p[row] = f32(cfg.temperature), cfg.top_p if cfg.top_p is not None else 1.0
        self.top_k[row], self.greedy[row] = min(cfg.top_k or 0, self.vocab_size), cfg.greedy
        self.repetition[row], self.presence[row] = f32(cfg.repetition_penalty), f32(cfg.presence_penalty)
        self.frequency[row] = f32(cfg.frequency_penalty)
        self.seen[row] = False
        self.seen[row, [t for t in prompt if t < self.vocab_size]] = True
        self.counts[row] = 0

    def move(self, src: int, dst: int) -> None:
        """Row ``src``'s sequence moves to row ``dst``."""
        self.cfgs[dst], self.generators[dst] = self.cfgs[src], self.generators[src]
        for t in (self.temperature, self.top_p, self.top_k, self.greedy, self.repetition, self.presence,
                  self.frequency, self.seen, self.counts):
            t[dst] = t[src]

    def _index(self, rows: list[int]) -> slice | torch.Tensor:
        """``rows`` as an index into the row tensors: a slice (a view, no copy) when they are consecutive."""
        if rows == list(range(rows[0], rows[0] + len(rows))):
            return slice(rows[0], rows[0] + len(rows))
        return torch.tensor(rows, device=self.device)

    def process(self, logits: torch.Tensor, rows: list[int]) -> torch.Tensor:
        """The logits-processor chain: next-token logits (B, V) of ``rows`` -> filtered, penalised,
        temperature-scaled logits (B, V) (greedy rows: penalised only)."""
        cfgs, at = [self.cfgs[r] for r in rows], self._index(rows)
        logits = logits[:, : self.vocab_size].float()
        if any(c.repetition_penalty != 1.0 for c in cfgs):
            logits = apply_repetition_penalty(logits, self.seen[at], self.repetition[at, None])
        if any(c.penalizes_counts for c in cfgs):
            logits = apply_count_penalties(logits, self.counts[at], self.presence[at, None], self.frequency[at, None])
        if all(c.greedy for c in cfgs):
            return logits
        temperature = torch.where(self.greedy[at], 1.0, self.temperature[at])
        logits = (logits / temperature[:, None]).nan_to_num()  # an extreme penalty overflowed: inf would make NaNs
        if k_max := max(c.top_k or 0 for c in cfgs):
            logits = top_k_filter(logits, self.top_k[at], k_max)
        if any(c.top_p is not None and c.top_p < 1.0 for c in cfgs):
            logits = top_p_filter(logits, self.top_p[at])
        return logits

    def sample(self, logits: torch.Tensor, rows: list[int]) -> torch.Tensor:
        """Next tokens (B,) of ``rows`` from their next-token logits (B, V); their statistics are updated."""
        logits, at = self.process(logits, rows), self._index(rows)
        token = logits.argmax(-1)
        sampled = [i for i, r in enumerate(rows) if not self.cfgs[r].greedy]
        if sampled:
            noise = torch.ones_like(logits)
            for i in sampled:
                noise[i].exponential_(generator=self.generators[rows[i]])
            token = torch.where(self.greedy[at], token, (logits.softmax(-1) / noise).argmax(-1))
        index = torch.tensor(rows, device=self.device)
        self.seen[index, token] = True
        self.counts[index, token] += 1
        return token


def sample(logits: torch.Tensor, cfg: SamplingConfig, prompt: list[int] = ()) -> torch.Tensor:
    """Next tokens (B,) from logits (B, V), every row sampled with ``cfg`` after ``prompt`` (seeded rows
    draw alike): the Sampler for a one-off batch."""
    sampler = Sampler(logits.shape[0], logits.shape[1], logits.device)
    for row in range(logits.shape[0]):
        sampler.set_row(row, cfg, list(prompt))
    return sampler.sample(logits, list(range(logits.shape[0])))
