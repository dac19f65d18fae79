"""Slots, the decoding state of continuous batching: sequences that join and leave a shared cache at
different steps and lengths decode exactly as generate() decodes each alone."""

import pytest
import torch

from gptkit import GptkitError
from gptkit.inference import SamplingConfig, generate_ids
from gptkit.inference.decoder import Slots
from tests.conftest import tiny_model

NEW = 12
PROMPTS = [[5, 6, 7, 8, 9, 10], [11, 12], [13], list(range(3, 20)), [40, 41, 42]]


@torch.inference_mode()
def decode_staggered(model, prompts: list[list[int]], capacity: int) -> list[list[int]]:
    """Greedy: one prompt joins per step while a row is free; each leaves after NEW tokens."""
    slots, waiting, done = Slots(model, capacity), list(enumerate(prompts)), {}
    rows: list[tuple[int, list[int]]] = []  # (prompt index, its tokens) of each row in use
    while waiting or rows:
        if waiting and slots.active < capacity:
            index, prompt = waiting.pop(0)
            rows.append((index, [int(slots.add([prompt])[0].argmax())]))
        for row in reversed(range(len(rows))):
            if len(rows[row][1]) == NEW:
                done[rows[row][0]] = rows[row][1]
                moved = slots.remove(row)
                rows[row] = rows[moved] if moved is not None else rows[row]
                rows.pop()
        if rows:
            logits = slots.step(torch.tensor([tokens[-1] for _, tokens in rows]))
            for row, (_, tokens) in enumerate(rows):
                tokens.append(int(logits[row].argmax()))
    return [done[i] for i in range(len(prompts))]


def test_sequences_joining_and_leaving_decode_as_each_alone(variant_model):
    alone = [generate_ids(variant_model, [p], SamplingConfig(max_new_tokens=NEW, temperature=0, stop_at_eot=False), 0)[0]
             for p in PROMPTS]
    assert decode_staggered(variant_model, PROMPTS, capacity=3) == alone


def test_a_full_cache_or_an_oversized_prompt_is_refused():
    slots = Slots(tiny_model(), capacity=1, max_len=8)
    with pytest.raises(GptkitError):
        slots.add([list(range(1, 9))])
    slots.add([[1, 2]])
    with pytest.raises(GptkitError):
        slots.add([[3]])


@torch.inference_mode()
def test_prompts_prefilled_together_decode_as_each_alone(variant_model):
    """Prompts of different lengths join in one prefill (padded at the end) beside a row in use,
    then all decode together."""
    cfg = SamplingConfig(max_new_tokens=NEW, temperature=0, stop_at_eot=False)
    alone = [generate_ids(variant_model, [p], cfg, 0)[0] for p in PROMPTS]
    slots = Slots(variant_model, capacity=len(PROMPTS))
    first = slots.add(PROMPTS[:1])
    rows = [[int(t)] for t in torch.cat([first, slots.add(PROMPTS[1:])]).argmax(-1)]
    for _ in range(NEW - 1):
        logits = slots.step(torch.tensor([tokens[-1] for tokens in rows]))
        for tokens, row_logits in zip(rows, logits):
            tokens.append(int(row_logits.argmax()))
    assert rows == alone
