"""generate(): the one decoding loop (static KV cache + sampler) that the CLI, chat and eval call."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import torch

from gptkit.errors import GptkitError
from gptkit.inference.sampling import SamplingConfig, sample
from gptkit.model import GPT
from gptkit.tokenizer import Tokenizer

log = logging.getLogger("gptkit")


def left_pad(prompts: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) tokens and attention mask, shorter prompts padded on the left so all end together."""
    L = max(len(p) for p in prompts)
    tokens = torch.full((len(prompts), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), L), dtype=torch.long)
    for i, p in enumerate(prompts):
        if p:
            tokens[i, L - len(p):] = torch.tensor(p)
            mask[i, L - len(p):] = 1
    return tokens.to(device), mask.to(device)


def truncate_prompt(ids: list[int], context: int) -> list[int]:
    if len(ids) > context:
        log.warning("the prompt has %d tokens, more than the context of %d: keeping the last %d",
                    len(ids), context, context)
        return ids[-context:]
    return ids


@torch.inference_mode()
def generate_tokens(
    model: GPT, prompts: list[list[int]], cfg: SamplingConfig, eot_id: int | None, use_cache: bool = True
) -> Iterator[torch.Tensor]:
    """Yield the next token of every prompt, (B,), one step at a time.

    Rows that reached end-of-text keep yielding ``eot_id``. Past the context length the window
    slides: the cache is refilled with the newest half of the context. An empty prompt starts from
    the end-of-text token, as GPT-2 does for unconditional samples.
    """
    block = model.config.block_size
    device = model.wte.weight.device
    if eot_id is None and not all(prompts):
        raise GptkitError("an empty prompt needs an end-of-text token, which this vocabulary lacks; give a prompt")
    stops = cfg.stop_at_eot and eot_id is not None
    pad_id = eot_id if eot_id is not None else 0
    prompts = [truncate_prompt(p or [eot_id], block) for p in prompts]
    seq, mask = left_pad(prompts, pad_id, device)
    generator = torch.Generator(device).manual_seed(cfg.seed) if cfg.seed is not None else None
    cache = model.new_kv_cache(len(prompts)) if use_cache else None

    def forward_window(width: int) -> torch.Tensor:
        window, window_mask = seq[:, -width:], mask[:, -width:]
        if cache is not None:
            cache.reset()
            return model(window, window_mask, cache, torch.arange(window.shape[1], device=device))[:, -1]
        return model(window, window_mask)[:, -1]

    logits = forward_window(block)
    finished = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    for _ in range(cfg.max_new_tokens):
        next_token = sample(logits, cfg, generator, seen=seq[:, -block:])
        next_token = torch.where(finished, pad_id, next_token)
        yield next_token
        if stops:
            finished |= next_token == eot_id
            if finished.all():
                return
        seq = torch.cat([seq, next_token[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        pos = seq.shape[1] - 1
        if cache is None:
            logits = forward_window(block)
        elif pos >= block:  # the cache is full: slide the window
            logits = forward_window(block // 2)
        else:
            logits = model(next_token[:, None], kv_cache=cache, input_pos=torch.tensor([pos], device=device))[:, -1]


def generate_ids(model: GPT, prompts: list[list[int]], cfg: SamplingConfig, eot_id: int | None,
                 use_cache: bool = True) -> list[list[int]]:
    """The new tokens of every prompt, without the end-of-text token that stopped it."""
    steps = list(generate_tokens(model, prompts, cfg, eot_id, use_cache))
    if not steps:
        return [[] for _ in prompts]
    out = torch.stack(steps, dim=1).tolist()  # (B, new)
    return [row[: row.index(eot_id)] if cfg.stop_at_eot and eot_id in row else row for row in out]


def generate(model: GPT, tokenizer: Tokenizer, prompts: str | list[str], cfg: SamplingConfig | None = None,
             **overrides) -> list[str]:
    """Continue each prompt; returns the generated text (without the prompt)."""
    cfg = cfg or SamplingConfig(**overrides)
    prompts = [prompts] if isinstance(prompts, str) else prompts
    ids = generate_ids(model, [tokenizer.encode(p) for p in prompts], cfg, tokenizer.eot_id)
    return [tokenizer.decode(row) for row in ids]


def generate_stream(model: GPT, tokenizer: Tokenizer, prompt_ids: list[int], cfg: SamplingConfig) -> Iterator[str]:
    """The continuation of one prompt as text pieces, each yielded as soon as it can be decoded."""
    tokens = (int(t[0]) for t in generate_tokens(model, [prompt_ids], cfg, tokenizer.eot_id))
    yield from stream_text(tokenizer, tokens, tokenizer.eot_id if cfg.stop_at_eot else None)


def cut_at_stops(text: str, stops: list[str]) -> str:
    """Generated text up to the first of the stop sequences (all of it when none occurs)."""
    for stop in stops:
        text = text.split(stop)[0]
    return text


def stream_text(tokenizer: Tokenizer, tokens: Iterable[int], eot_id: int | None = None) -> Iterator[str]:
    """Text pieces as tokens arrive. A byte-level token may end inside a UTF-8 character, so text
    is held back while it ends in a replacement character and released once the character completes."""
    ids: list[int] = []
    emitted = 0
    for token in tokens:
        if token == eot_id:
            break
        ids.append(token)
        text = tokenizer.decode(ids)
        if text.endswith("\ufffd"):
            continue
        yield text[emitted:]
        emitted = len(text)
    text = tokenizer.decode(ids)
    if len(text) > emitted:
        yield text[emitted:]
