"""generate(): prompts in, tokens or text out, through the one decode engine (the CLI, chat and eval call it)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator

import torch

from gptkit.errors import GptkitError
from gptkit.inference.engine import BLOCK_LEN, Engine, Sequence
from gptkit.inference.sampling import SamplingConfig, offset_seed
from gptkit.model import GPT
from gptkit.tokenizer import Tokenizer

log = logging.getLogger("gptkit")


def truncate_prompt(ids: list[int], context: int) -> list[int]:
    if len(ids) > context:
        log.warning("the prompt has %d tokens, more than the context of %d: keeping the last %d",
                    len(ids), context, context)
        return ids[-context:]
    return ids


def generate_tokens(model: GPT, prompts: list[list[int]], cfg: SamplingConfig, eot_id: int | None,
                    use_cache: bool = True, static: bool | None = None, engine: Engine | None = None,
                    vocab_size: int | None = None) -> Iterator[torch.Tensor]:
    """Yield the next token of every prompt, (B,), one step at a time, from the one decode engine.

    Rows that reached end-of-text keep yielding ``eot_id``. Past the context length a row's window
    slides to its newest half. An empty prompt starts from the end-of-text token, as GPT-2 does for
    unconditional samples. With a seed, row i samples with seed + i (row 0: the seed itself). Pass an
    ``engine`` to keep its cache between calls (a chat: the next turn reuses the last one's blocks);
    ``use_cache=False`` computes every window from scratch (the reference the cache must match);
    ``static`` decodes in fixed shapes, what CUDA captures as a graph (the engine's default there).
    """
    if eot_id is None and not all(prompts):
        raise GptkitError("an empty prompt needs an end-of-text token, which this vocabulary lacks; give a prompt")
    if cfg.max_new_tokens == 0:
        return
    prompts = [truncate_prompt(p or [eot_id], model.config.block_size) for p in prompts]
    stop = eot_id if cfg.stop_at_eot else None
    if engine is None:
        blocks = sum(-(-min(model.config.block_size, len(p) + cfg.max_new_tokens) // BLOCK_LEN) for p in prompts)
        engine = Engine(model, len(prompts), stop, vocab_size, kv_cache_tokens=blocks * BLOCK_LEN,
                        use_cache=use_cache, static=static)
    seqs = [Sequence(p, dataclasses.replace(cfg, seed=offset_seed(cfg.seed, i))) for i, p in enumerate(prompts)]
    engine.add(seqs)
    pad = eot_id if eot_id is not None else 0
    try:
        for i in range(cfg.max_new_tokens):
            while not all(s.done or len(s.generated) > i for s in seqs):  # (all join at once, unless the engine is full)
                engine.step()
            yield torch.tensor([s.generated[i] if len(s.generated) > i else pad for s in seqs])
            if all(s.done for s in seqs):
                return
    finally:  # the caller stopped early (a stop string, Ctrl-C): the engine, which may be kept, lets them go
        engine.cancel(s for s in seqs if not s.done)

def generate_ids(model: GPT, prompts: list[list[int]], cfg: SamplingConfig, eot_id: int | None,
                 use_cache: bool = True, static: bool | None = None, engine: Engine | None = None) -> list[list[int]]:
    """The new tokens of every prompt, without the end-of-text token that stopped it."""
    steps = list(generate_tokens(model, prompts, cfg, eot_id, use_cache, static, engine))
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


def generate_stream(model: GPT, tokenizer: Tokenizer, prompt_ids: list[int], cfg: SamplingConfig,
                    engine: Engine | None = None) -> Iterator[str]:
    """The continuation of one prompt as text pieces, each yielded as soon as it can be decoded."""
    tokens = (int(t[0]) for t in generate_tokens(model, [prompt_ids], cfg, tokenizer.eot_id, engine=engine))
    yield from stream_text(tokenizer, tokens, tokenizer.eot_id if cfg.stop_at_eot else None)


def cut_at_stops(text: str, stops: list[str]) -> str:
    """Generated text up to the first of the stop sequences (all of it when none occurs)."""
    for stop in stops:
        text = text.split(stop)[0]
    return text


class TextDecoder:
    """Token ids in, text out as soon as it is whole, at a cost per token that does not grow with
    the text: only the tokens since the last piece, after a few for context, are decoded again.

    The new piece is decode(context + new) less decode(context): a tokenizer whose decode depends on
    the neighbouring token (GPT-1's spaces between words) gets its neighbour. A byte-level token may
    end inside a UTF-8 character, so the text is held back while it ends in a replacement character.
    """

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer, self.ids = tokenizer, []
        self.context = self.released = 0  # ids[context:released] precede the unreleased ids

    def push(self, token: int) -> str:
        """The new text this token completes ("" while a character is still partial)."""
        self.ids.append(token)
        return self._release(complete=False)

    def flush(self) -> str:
        """Whatever is still held back, as it decodes."""
        return self._release(complete=True)

    def _release(self, complete: bool) -> str:
        before = self.tokenizer.decode(self.ids[self.context: self.released])
        text = self.tokenizer.decode(self.ids[self.context:])
        if len(text) <= len(before) or (text.endswith("\ufffd") and not complete):
            return ""
        self.context, self.released = self.released, len(self.ids)
        return text[len(before):]


def stream_text(tokenizer: Tokenizer, tokens: Iterable[int], eot_id: int | None = None) -> Iterator[str]:
    """Text pieces as tokens arrive (see TextDecoder), up to ``eot_id``."""
    text = TextDecoder(tokenizer)
    for token in tokens:
        if token == eot_id:
            break
        if piece := text.push(token):
            yield piece
    if tail := text.flush():
        yield tail
