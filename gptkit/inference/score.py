"""score(): log P(continuation | context), the one scorer behind perplexity, multiple choice,
last-word accuracy, the lm-evaluation-harness adapter and MMI reranking."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from gptkit.errors import GptkitError
from gptkit.model import GPT


@dataclass
class Score:
    logprob: float  # sum of the continuation's token log-probabilities (nats)
    token_logprobs: list[float]
    greedy: bool  # every continuation token was the model's most likely next token

    @property
    def n_tokens(self) -> int:
        return len(self.token_logprobs)


def _window(context: list[int], continuation: list[int], block: int, bos: int | None) -> tuple[list[int], int]:
    """The model's input tokens (context + continuation, minus the last) and how many targets to score."""
    if not continuation:
        raise GptkitError("cannot score an empty continuation")
    if len(continuation) > block:
        raise GptkitError(f"a continuation of {len(continuation)} tokens does not fit the context of {block}")
    if not context:
        if bos is None:
            raise GptkitError("an empty context needs an end-of-text token to condition on, which this vocabulary lacks")
        context = [bos]
    full = (context + continuation)[-(block + 1):]  # keep the continuation whole, cut the context's left end
    return full, len(continuation)


@torch.inference_mode()
def score(model: GPT, requests: list[tuple[list[int], list[int]]], bos_id: int | None = None,
          batch_size: int = 16, progress: bool = False, desc: str = "scoring") -> list[Score]:
    """Score each (context, continuation) pair; requests are sorted by length and batched with
    right padding, and the results come back in the order given. ``desc`` labels the progress bar."""
    block = model.config.block_size
    device = model.wte.weight.device
    windows = [_window(ctx, cont, block, bos_id) for ctx, cont in requests]
    order = sorted(range(len(windows)), key=lambda i: -len(windows[i][0]))
    results: list[Score | None] = [None] * len(windows)
    for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch", disable=not progress):
        batch = order[start: start + batch_size]
        width = max(len(windows[i][0]) for i in batch) - 1
        x = torch.zeros(len(batch), width, dtype=torch.long)
        mask = torch.zeros(len(batch), width, dtype=torch.long)
        for row, i in enumerate(batch):
            tokens = windows[i][0][:-1]
            x[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = 1
        hidden = model(x.to(device), attention_mask=mask.to(device), return_hidden=True)  # (B, T, C)
        for row, i in enumerate(batch):
            full, n = windows[i]
            # Only the continuation's positions go through the output layer: vocabulary-wide logits
            # for every position of a long context would dwarf the model's own activations.
            logprobs = F.log_softmax(model.lm_head(hidden[row, len(full) - 1 - n: len(full) - 1]).float(), -1)  # (n, V)
            targets = torch.tensor(full[-n:], device=device)
            picked = logprobs.gather(1, targets[:, None]).squeeze(1)
            greedy = bool((logprobs.argmax(-1) == targets).all())
            results[i] = Score(float(picked.sum()), picked.tolist(), greedy)
    return results  # type: ignore[return-value]
