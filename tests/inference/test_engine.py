"""The one decode engine: sequences that join and leave at different steps and lengths, share cached
prefixes, or decode in fixed shapes (the CUDA graph's twin) give exactly the tokens each gets alone."""

import pytest
import torch

from gptkit import GPT, GPTConfig, GptkitError
from gptkit.inference import SamplingConfig, generate_ids
from gptkit.inference.engine import BLOCK_LEN, Engine, Sequence
from tests.conftest import tiny_model

NEW = 12
PROMPTS = [[5, 6, 7, 8, 9, 10], [11, 12], [13], list(range(3, 20)), [40, 41, 42]]
GREEDY = SamplingConfig(max_new_tokens=NEW, temperature=0, stop_at_eot=False)


def alone(model, prompts, cfg=GREEDY) -> list[list[int]]:
    return [generate_ids(model, [p], cfg, 0)[0] for p in prompts]


def staggered(engine: Engine, prompts, cfg=GREEDY) -> list[list[int]]:
    """One prompt joins per step, whatever else is running; all decode to the end."""
    seqs = [Sequence(p, cfg) for p in prompts]
    waiting = list(seqs)
    while waiting or engine.running or engine.waiting:
        if waiting:
            engine.add([waiting.pop(0)])
        engine.step()
    return [s.generated for s in seqs]


@pytest.mark.parametrize("static", [False, True], ids=["eager", "graph-twin"])
def test_sequences_joining_and_leaving_decode_as_each_alone(variant_model, static):
    engine = Engine(variant_model, max_batch=3, static=static)
    assert staggered(engine, PROMPTS) == alone(variant_model, PROMPTS)
    assert engine.blocks.promised == 0 and not engine.blocks.refs  # every block given back


def test_seeded_sampling_is_the_same_beside_others_as_alone():
    model = tiny_model()
    cfgs = [SamplingConfig(max_new_tokens=NEW, temperature=1.0, top_k=20, seed=s, stop_at_eot=False) for s in (1, 2)]
    mixed = [*cfgs, GREEDY, SamplingConfig(max_new_tokens=NEW, temperature=0.7, top_p=0.8, seed=3, stop_at_eot=False)]
    seqs = [Sequence(p, c) for p, c in zip(PROMPTS, mixed)]
    Engine(model, max_batch=4).run(seqs)
    assert [s.generated for s in seqs] == [alone(model, [p], c)[0] for p, c in zip(PROMPTS, mixed)]


def test_a_prompt_that_starts_like_an_earlier_one_reuses_its_blocks_and_its_tokens_stay_the_same():
    model = tiny_model()  # context 64: four blocks of 16
    engine = Engine(model, max_batch=2)
    first = Sequence(list(range(1, 40)), GREEDY)
    engine.run([first])
    turn = [*first.tokens, 50, 51, 52]  # the conversation so far, and a new message
    second = Sequence(turn, SamplingConfig(max_new_tokens=5, temperature=0, stop_at_eot=False))
    engine.add([second])
    engine.step()
    assert second.cached >= 3 * BLOCK_LEN  # three full blocks came from the cache ...
    assert engine.blocks.hit_tokens == 3 * BLOCK_LEN
    engine.run([second])
    assert second.generated == alone(model, [turn], second.cfg)[0]  # ... and gave the same tokens


def test_memory_follows_the_tokens_in_use():
    model = tiny_model()
    engine = Engine(model, max_batch=4, kv_cache_tokens=4 * 64)
    seq = Sequence([1, 2, 3], SamplingConfig(max_new_tokens=20, temperature=0, stop_at_eot=False))
    engine.add([seq])
    engine.step()
    assert len(seq.blocks) == 1  # 4 tokens: one block taken, two more promised
    engine.run([seq])
    assert len(engine.blocks.free) + len(engine.blocks.idle) == engine.cache.n_blocks


def test_every_layer_and_step_gathers_keys_into_the_same_two_buffers_and_autograd_gets_fresh_ones():
    model = tiny_model()
    engine = Engine(model, max_batch=2)
    cache = engine.cache
    with torch.no_grad():
        first = cache.gather_buffers(100)
        assert [b.data_ptr() for b in cache.gather_buffers(60)] == [b.data_ptr() for b in first]  # reused
        assert cache.gather_buffers(150)[0].numel() == 150 * model.config.n_embd  # grown (to 200 positions)
    grown = list(cache.gathered)
    engine.run([Sequence([1, 2, 3], GREEDY), Sequence(list(range(4, 30)), GREEDY)])  # at most 2 x 38 keys a layer
    assert all(now is before for now, before in zip(cache.gathered, grown))  # no pass reallocated them
    with torch.enable_grad():
        assert cache.gather_buffers(10) is None  # a buffer autograd saved must not be overwritten


def test_a_lone_sequence_reads_its_keys_in_place_and_decodes_as_without_a_cache():
    model = tiny_model()
    engine = Engine(model, max_batch=1)
    seq = Sequence(list(range(1, 40)), GREEDY)
    engine.run([seq])
    assert engine.cache.gathered[0].numel() == 0  # its blocks were consecutive: nothing was gathered
    assert seq.generated == generate_ids(model, [seq.prompt], GREEDY, 0, use_cache=False)[0]


def test_a_sequence_waits_until_the_cache_can_promise_its_blocks():
    model = tiny_model()
    engine = Engine(model, max_batch=4, kv_cache_tokens=64)  # one whole context
    cfg = SamplingConfig(max_new_tokens=40, temperature=0, stop_at_eot=False)
    seqs = [Sequence([1, 2, 3], cfg), Sequence([4, 5], cfg)]
    engine.add(seqs)
    engine.step()
    assert engine.running == seqs[:1] and list(engine.waiting) == seqs[1:]
    engine.run(seqs)
    assert [s.generated for s in seqs] == alone(model, [[1, 2, 3], [4, 5]], cfg)


def test_a_sequence_the_whole_cache_cannot_hold_is_refused():
    engine = Engine(tiny_model(), kv_cache_tokens=32)
    with pytest.raises(GptkitError, match=r"the KV cache \(32 tokens\) cannot hold a sequence of 50 tokens"):
        engine.run([Sequence(list(range(1, 41)), SamplingConfig(max_new_tokens=10))])


@torch.inference_mode()
def test_prompts_prefilled_together_decode_as_each_alone(variant_model):
    """Prompts of different lengths join in one prefill (padded at the end) beside a row in use,
    then all decode together."""
    engine = Engine(variant_model, max_batch=len(PROMPTS))
    seqs = [Sequence(p, GREEDY) for p in PROMPTS]
    engine.add(seqs[:1])
    engine.step()
    engine.run(seqs)
    assert [s.generated for s in seqs] == alone(variant_model, PROMPTS)


def test_rows_that_finish_leave_the_batch_and_the_others_are_unchanged():
    model = tiny_model()
    prompts = [[5, 6, 7], [11, 12], [13], [20, 21, 22, 23]]
    free = generate_ids(model, prompts, SamplingConfig(max_new_tokens=30, temperature=0, stop_at_eot=False), eot_id=0)
    eot = free[0][2]  # the first row ends at its third token, the others later or never
    cfg = SamplingConfig(max_new_tokens=30, temperature=0)
    engine = Engine(model, max_batch=4, eot_id=eot)
    seqs = [Sequence(p, cfg) for p in prompts]
    engine.add(seqs)
    sizes = []
    while engine.running or engine.waiting:
        engine.step()
        sizes.append(len(engine.running))
    ended = [s.generated[:-1] if s.finish_reason == "stop" else s.generated for s in seqs]  # less the end-of-text
    assert ended == [generate_ids(model, [p], cfg, eot)[0] for p in prompts]
    assert sizes[-1] == 0 and 0 < min(sizes[:-1]) < 4 and len({len(s.generated) for s in seqs}) > 1  # rows left early
    sampled = SamplingConfig(max_new_tokens=30, temperature=1.0, seed=0)  # a row's draws ignore the others leaving
    assert generate_ids(model, prompts, sampled, eot) == generate_ids(model, prompts, sampled, eot, static=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU (bash benchmarks/decode_gpu.sh runs this)")
def test_graphed_steps_of_every_batch_size_decode_as_eager_ones():
    """On CUDA the server's engine replays one CUDA graph per batch-size bucket as sequences come and go."""
    model = tiny_model().cuda()
    graphed = Engine(model, max_batch=4)
    assert graphed.runner.graphed
    assert staggered(graphed, PROMPTS) == staggered(Engine(model, max_batch=4, static=False), PROMPTS)
    assert sorted(graphed.runner.steps) == [1, 2, 4]


@pytest.mark.parametrize("static", [False, True], ids=["eager", "graph-twin"])
def test_banded_layers_keep_only_their_window_and_decode_as_the_masked_dense_path(static):
    """GPT-3's banded layers read their keys from a ring of the last `window` positions: greedy tokens
    equal computing every window from scratch, past the context too (the window slides twice)."""
    model = tiny_model(attention="alternating", local_window=20)  # a ring of 3 blocks of 16
    cfg = SamplingConfig(max_new_tokens=100, temperature=0, stop_at_eot=False)
    prompts = [list(range(1, 40)), [3, 4], list(range(50, 70))]
    cached = generate_ids(model, prompts, cfg, 0, static=static)
    assert cached == generate_ids(model, prompts, cfg, 0, use_cache=False)
    assert cached == [generate_ids(model, [p], cfg, 0, static=static)[0] for p in prompts]


def test_a_gpt3_style_model_caches_little_more_than_half_the_keys_of_a_dense_one_at_2048():
    dense = GPT(GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=2048, vocab_size=256))
    gpt3 = GPT(dense.config.replace(attention="alternating", local_window=256))
    sizes = []
    for model in (dense, gpt3):
        engine = Engine(model, max_batch=1)
        seq = Sequence([1] * 2046, SamplingConfig(max_new_tokens=2, temperature=0))
        engine.add([seq])
        engine.step()  # the whole context prefilled: 2,047 positions held
        cache = engine.cache
        sizes.append(len(seq.blocks) * cache.bytes_per_token() * BLOCK_LEN + cache.kb.nbytes + cache.vb.nbytes)
    assert sizes[1] <= 0.6 * sizes[0]
