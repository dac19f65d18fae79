"""The engine alone, in process: a sequence whose own work fails (settings the request checks would
have refused, here forced past them) ends alone with an error, and the sequence decoding beside it
in the same batch gets the very tokens it gets alone."""

from __future__ import annotations

import asyncio

import pytest

from gptkit.inference import SamplingConfig
from gptkit.inference.sampling import MAX_SEED
from gptkit.serve.engine import Engine, EngineConfig, Sequence, Token
from gptkit.tokenizer import Tokenizer
from tests.conftest import tiny_model
from tests.serve.conftest import TEXT

TOKENIZER = Tokenizer.char(TEXT)
GOOD = SamplingConfig(max_new_tokens=12, temperature=0, stop_at_eot=False)


def broken(setting: str) -> SamplingConfig:
    """Settings that fail in the engine: a seed torch refuses (when the sequence joins), or a top-k of
    0 (at every token)."""
    cfg = SamplingConfig(max_new_tokens=12, temperature=1.0, seed=1, stop_at_eot=False)
    setattr(cfg, setting, {"seed": MAX_SEED + 1, "top_k": 0}[setting])
    return cfg


def decode(configs: list[SamplingConfig]) -> list[list[int] | str]:
    """Each sequence's tokens, or its error, all submitted together (so they join one batch)."""
    async def collect(events: asyncio.Queue) -> list[list[int] | str]:
        results: list[list[int] | str] = [[] for _ in configs]
        finished = 0
        while finished < len(configs):
            index, event = await events.get()
            if isinstance(event, Token):
                results[index].append(event.id)
            else:  # each sequence ends with one Finish: "length", or its error
                finished += 1
                results[index] = event.error or results[index]
        return results

    async def run() -> list[list[int] | str]:
        engine = Engine(tiny_model(vocab_size=TOKENIZER.vocab_size), TOKENIZER, EngineConfig(max_batch=4, max_queue=4))
        events: asyncio.Queue = asyncio.Queue()
        engine.start()
        engine.submit([Sequence(i, TOKENIZER.encode("Good morrow"), cfg, events) for i, cfg in enumerate(configs)])
        try:
            return await asyncio.wait_for(collect(events), 60)
        finally:
            engine.stop()

    return asyncio.run(run())


@pytest.mark.parametrize("setting", ["seed", "top_k"])
def test_a_failing_sequence_ends_alone_and_its_neighbour_decodes_as_alone(setting):
    [alone] = decode([GOOD])
    neighbour, failed = decode([GOOD, broken(setting)])
    assert len(alone) == 12 and neighbour == alone
    assert failed.startswith("decoding failed: ")
