"""Perplexity of long text with a sliding window: every token scored exactly once, with as much
left context as the window allows (GPT-2 paper, section 3.1; the same as transformers' recipe)."""

from __future__ import annotations

import math

from gptkit.errors import GptkitError
from gptkit.inference import score
from gptkit.model import GPT
from gptkit.tokenizer import Tokenizer


def sliding_windows(n_tokens: int, block: int, stride: int, start: int = 0) -> list[tuple[int, int, int]]:
    """(context_start, target_start, target_end) per window; the targets tile [start, n_tokens) exactly
    and each window's context + targets fill the model's input (block tokens predicting block + 1)."""
    if not 0 < stride <= block:
        raise GptkitError(f"--stride must be between 1 and the context length {block}, got {stride}")
    windows, target_start = [], start
    while target_start < n_tokens:
        target_end = min(n_tokens, target_start + stride)
        windows.append((max(0, target_end - block - 1), target_start, target_end))
        target_start = target_end
    return windows


def perplexity(model: GPT, tokenizer: Tokenizer, text: str, stride: int | None = None, batch_size: int = 8,
               progress: bool = False) -> dict:
    """Token perplexity, bits per byte and word perplexity of ``text``, with the counts used."""
    ids = tokenizer.encode(text, allow_special=False)
    if not ids:
        raise GptkitError("the text to score is empty")
    block = model.config.block_size
    stride = stride or block // 2
    # The text is scored as a document: after an end-of-text token, as in GPT-2's evaluation. A
    # vocabulary without one (GPT-1's) cannot score the first token, so scoring starts at the second.
    stream = ([tokenizer.eot_id] if tokenizer.eot_id is not None else []) + ids
    windows = sliding_windows(len(stream), block, stride, start=1)
    requests = [(stream[ctx:tgt], stream[tgt:end]) for ctx, tgt, end in windows]
    scores = score(model, requests, batch_size=batch_size, progress=progress, desc="perplexity")
    nll = -sum(s.logprob for s in scores)
    n_bytes, n_words = len(text.encode("utf-8")), len(text.split())
    n_scored = len(stream) - 1
    return {
        "perplexity": math.exp(nll / n_scored),
        "bits_per_byte": nll / math.log(2) / n_bytes,
        "word_perplexity": math.exp(nll / max(n_words, 1)),
        "nll": nll, "tokens": n_scored, "bytes": n_bytes, "words": n_words,
        "stride": stride, "context": block, "windows": len(requests),
    }
