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


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """Make every token ``seen`` (B, V bool) already less likely, whatever the sign of its logit.

    Dividing a negative logit would make it *more* likely, so negative logits are multiplied.
    """
    penalized = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalized, logits)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    kth = torch.topk(logits, min(k, logits.size(-1)), dim=-1).values[:, -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus sampling: keep the smallest set of tokens whose probability adds up to at least p."""
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    cumulative = sorted_logits.softmax(-1).cumsum(-1)
    drop = cumulative - sorted_logits.softmax(-1) >= p  # mass before this token already reaches p
    drop[:, 0] = False  # the likeliest token always stays: a p below float32's least (1e-300) would drop it too
    return logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))


def apply_count_penalties(logits: torch.Tensor, counts: torch.Tensor, presence: float, frequency: float) -> torch.Tensor:
    """OpenAI's presence and frequency penalties; ``counts`` (B, V) counts each generated token."""
    return logits - counts * frequency - (counts > 0).float() * presence


def process_logits(logits: torch.Tensor, cfg: SamplingConfig, seen: torch.Tensor | None = None,
                   counts: torch.Tensor | None = None) -> torch.Tensor:
    """logits (B, V) of the next token -> filtered, temperature-scaled logits (B, V)."""
    logits = logits.float()
    if cfg.repetition_penalty != 1.0 and seen is not None:
        logits = apply_repetition_penalty(logits, seen, cfg.repetition_penalty)
    if cfg.penalizes_counts and counts is not None:
        logits = apply_count_penalties(logits, counts, cfg.presence_penalty, cfg.frequency_penalty)
    if cfg.greedy:
        return logits
    logits = (logits / cfg.temperature).nan_to_num()  # logits an extreme penalty overflowed: inf would make NaNs
    if cfg.top_k is not None:
        logits = top_k_filter(logits, cfg.top_k)
    if cfg.top_p is not None and cfg.top_p < 1.0:
        logits = top_p_filter(logits, cfg.top_p)
    return logits


def sample(logits: torch.Tensor, cfg: SamplingConfig, generator: torch.Generator | None = None,
           seen: torch.Tensor | None = None, rows: torch.Tensor | None = None, batch_size: int = 0,
           counts: torch.Tensor | None = None) -> torch.Tensor:
    """Next token ids (B,) from next-token logits (B, V); ``seen`` (B, V) marks tokens for the
    repetition penalty, ``counts`` (B, V) counts generated ones for the presence/frequency penalties.

    Sampling divides the probabilities by exponential noise and takes the argmax: the draws
    torch.multinomial makes, without its host synchronisation, so it can sit inside a CUDA graph.
    With ``rows`` (B,), these are those rows of a batch of ``batch_size``: noise is drawn for the
    whole batch, so a row's draws do not depend on which other rows are still decoding.
    """
    logits = process_logits(logits, cfg, seen, counts)
    if cfg.greedy:
        return logits.argmax(-1)
    shape = (batch_size, logits.shape[1]) if rows is not None else logits.shape
    noise = torch.empty(shape, device=logits.device).exponential_(generator=generator)
    return (logits.softmax(-1) / (noise if rows is None else noise[rows])).argmax(-1)
