import logging

import pytest
import torch
from click.testing import CliRunner

from gptkit import GptkitError, Tokenizer
from gptkit.cli.main import cli
from gptkit.inference import SamplingConfig, generate, generate_ids, stream_text
from gptkit.inference.sampling import (
    MAX_SEED,
    Sampler,
    apply_repetition_penalty,
    offset_seed,
    sample,
    top_k_filter,
    top_p_filter,
)
from gptkit.tokenizer import GPT1BPETokenizer
from tests.conftest import tiny_model

GREEDY = SamplingConfig(max_new_tokens=40, temperature=0, stop_at_eot=False)


STEPS = {"eager": False, "graph-twin": True}  # the CPU step, and the static one CUDA captures as a graph


@pytest.mark.parametrize("static", list(STEPS.values()), ids=list(STEPS))
def test_kv_cache_gives_the_same_greedy_tokens_as_no_cache(variant_model, static):
    prompts = [[5, 6, 7, 8, 9, 10], [11, 12], [13]]
    with_cache = generate_ids(variant_model, prompts, GREEDY, eot_id=0, static=static)
    without = generate_ids(variant_model, prompts, GREEDY, eot_id=0, use_cache=False)
    assert with_cache == without
    assert all(len(row) == 40 for row in with_cache)


@pytest.mark.parametrize("static", list(STEPS.values()), ids=list(STEPS))
def test_batched_generation_equals_one_prompt_at_a_time(variant_model, static):
    prompts = [[5, 6, 7, 8, 9, 10], [11, 12], [13]]
    batched = generate_ids(variant_model, prompts, GREEDY, eot_id=0, static=static)
    assert batched == [generate_ids(variant_model, [p], GREEDY, eot_id=0, static=static)[0] for p in prompts]


def test_sampling_is_reproducible_with_a_seed():
    model = tiny_model()
    cfg = SamplingConfig(max_new_tokens=30, temperature=1.0, top_k=50, top_p=0.9, seed=3, stop_at_eot=False)
    a = generate_ids(model, [[1, 2, 3]], cfg, eot_id=0)
    assert a == generate_ids(model, [[1, 2, 3]], cfg, eot_id=0)
    assert a != generate_ids(model, [[1, 2, 3]], SamplingConfig(**{**cfg.__dict__, "seed": 4}), eot_id=0)


@pytest.mark.parametrize("static", list(STEPS.values()), ids=list(STEPS))
def test_generation_slides_past_the_context_length(static):
    model = tiny_model()  # context 64: the window slides twice
    cfg = SamplingConfig(max_new_tokens=100, temperature=0, stop_at_eot=False)
    out = generate_ids(model, [list(range(1, 61)), [3, 4]], cfg, 0, static=static)
    assert [len(row) for row in out] == [100, 100]
    assert out == generate_ids(model, [list(range(1, 61)), [3, 4]], cfg, 0, use_cache=False)


def test_stops_at_end_of_text():
    model = tiny_model()
    with torch.no_grad():
        model.wte.weight[7] *= 0  # make token 7's logit 0 ...
        model.wte.weight[7, 0] = 100.0  # ... then dominant along one hidden dimension
    first = generate_ids(model, [[1, 2]], SamplingConfig(max_new_tokens=1, temperature=0), eot_id=0)[0][0]
    out = generate_ids(model, [[1, 2]], SamplingConfig(max_new_tokens=20, temperature=0), eot_id=first)
    assert out == [[]]


def test_long_prompt_is_left_truncated_with_a_warning(caplog):
    model = tiny_model()
    with caplog.at_level(logging.WARNING, logger="gptkit"):
        out = generate_ids(model, [list(range(100))], SamplingConfig(max_new_tokens=3, temperature=0), eot_id=0)
    assert "keeping the last 64" in caplog.text
    assert out == generate_ids(model, [list(range(36, 100))], SamplingConfig(max_new_tokens=3, temperature=0), eot_id=0)


def test_top_k_keeps_exactly_k():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]])
    kept = torch.isfinite(top_k_filter(logits.expand(2, -1), torch.tensor([2, 0]), 2))
    assert kept.tolist() == [[False, True, False, True, False], [True] * 5]  # k = 0 keeps all


def test_top_p_keeps_the_smallest_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = torch.isfinite(top_p_filter(probs.log().expand(3, -1), torch.tensor([0.75, 0.5, 1.0]))).tolist()
    assert kept[0] == [True, True, False, False]  # 0.5 < 0.75, 0.5 + 0.3 >= 0.75
    assert kept[1:] == [[True, False, False, False], [True] * 4]


def test_repetition_penalty_lowers_positive_and_negative_logits():
    logits = torch.tensor([[2.0, -2.0, 1.0]])
    out = apply_repetition_penalty(logits, torch.tensor([[True, True, False]]), torch.tensor([[2.0]]))
    assert out.tolist() == [[1.0, -4.0, 1.0]]  # -2 / 2 would have made token 1 more likely


def test_repetition_penalty_ignores_the_padding_of_shorter_prompts():
    model = tiny_model()
    cfg = SamplingConfig(max_new_tokens=20, temperature=0, repetition_penalty=1.5, stop_at_eot=False)
    prompts = [[5, 6, 7, 8, 9, 10], [0, 12]]  # 0 is the padding token and also a real token of row 2
    assert generate_ids(model, prompts, cfg, eot_id=0) == [generate_ids(model, [p], cfg, eot_id=0)[0] for p in prompts]


def test_each_row_samples_with_its_own_settings_in_one_call():
    """Rows of one batch with different temperatures, top-k, top-p and seeds each sample as they would
    alone, and greedy rows take the argmax beside them."""
    torch.manual_seed(0)
    logits = torch.randn(4, 50)
    cfgs = [SamplingConfig(temperature=0.5), SamplingConfig(temperature=0), SamplingConfig(top_k=3, seed=7),
            SamplingConfig(top_p=0.5, temperature=2.0, seed=8, repetition_penalty=1.5)]
    sampler = Sampler(4, 50, torch.device("cpu"))
    for row, cfg in enumerate(cfgs):
        sampler.set_row(row, cfg, [1, 2])
    torch.testing.assert_close(sampler.process(logits, [0])[0], logits[0] * 2)  # temperature 0.5
    together = sampler.sample(logits, [0, 1, 2, 3]).tolist()
    assert together[1] == int(logits[1].argmax())
    assert together[2:] == [int(sample(logits[r: r + 1], cfgs[r], [1, 2])[0]) for r in (2, 3)]


@pytest.mark.parametrize("bad", [dict(temperature=-1), dict(top_k=0), dict(top_p=1.5), dict(repetition_penalty=0),
                                 dict(seed=-1), dict(seed=MAX_SEED + 1)])
def test_bad_sampling_settings_are_rejected(bad):
    with pytest.raises(GptkitError):
        SamplingConfig(**bad)


@pytest.mark.parametrize("tiny", [dict(temperature=1e-300), dict(top_p=1e-300), dict(repetition_penalty=1e-300)])
def test_extreme_settings_sample_a_real_token(tiny):
    """A temperature too small to divide by is greedy, a top-p under float32's least keeps the likeliest
    token, and logits an extreme penalty overflows stay finite: never NaNs, whose argmax is token 0."""
    logits = torch.tensor([[0.5, 3.0, -1.0, 2.0]])
    token = sample(logits, SamplingConfig(**tiny, seed=0), prompt=[2, 3])  # tokens 2 and 3 were seen
    assert token.tolist() == ([3] if "repetition_penalty" in tiny else [1])  # the seen token with a positive logit


def test_the_seed_of_a_later_sample_wraps_past_the_largest():
    assert (offset_seed(MAX_SEED, 1), offset_seed(5, 2), offset_seed(None, 3)) == (0, 7, None)


@pytest.mark.parametrize("command", ["generate", "chat"])
@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1])
def test_a_seed_torch_cannot_take_is_one_line_before_the_model_loads(command, seed):
    result = CliRunner().invoke(cli, [command, "--model", "not-loaded", "--seed", str(seed)])
    assert (result.exit_code, result.stderr) == (2, f"error: --seed must be in 0..{MAX_SEED}, got {seed}\n")


def test_stream_text_never_splits_a_utf8_character():
    tok = Tokenizer.gpt2()
    text = "Hamlet 🤔 思う — fin"
    ids = tok.encode(text)
    pieces = list(stream_text(tok, ids))
    assert "".join(pieces) == text
    assert not any("\ufffd" in p for p in pieces)


STREAM_TEXT = "Good morrow, my lord. What news? 你好 🤔 -- it's (here) ... end"


def gpt1_tokenizer(directory) -> Tokenizer:
    """A GPT-1-style vocabulary (</w> word ends, BERT pre-tokenizer) learned from STREAM_TEXT."""
    from tokenizers import Tokenizer as Backend
    from tokenizers import models, normalizers, pre_tokenizers, trainers

    backend = Backend(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.train_from_iterator([STREAM_TEXT] * 20, trainer=trainers.BpeTrainer(
        vocab_size=120, special_tokens=["<unk>"], end_of_word_suffix="</w>", show_progress=False))
    backend.model.save(str(directory))
    return GPT1BPETokenizer.from_files(directory / "vocab.json", directory / "merges.txt")


@pytest.mark.parametrize("kind", ["gpt2", "char", "gpt1"])
def test_streamed_pieces_add_up_to_the_whole_decode(kind, tmp_path):
    """Decoding only the newest tokens (with a little context) gives the text the whole decode gives,
    for random ids too: cut characters, GPT-1's spaces between words, punctuation."""
    text = STREAM_TEXT
    tok = {"gpt2": Tokenizer.gpt2, "char": lambda: Tokenizer.char(text), "gpt1": lambda: gpt1_tokenizer(tmp_path)}[kind]()
    random_ids = torch.randint(0, tok.vocab_size, (300,), generator=torch.Generator().manual_seed(0)).tolist()
    for ids in (tok.encode(text, allow_special=False), random_ids):
        assert "".join(stream_text(tok, ids)) == tok.decode(ids)


def test_generate_returns_text_for_each_prompt():
    tok = Tokenizer.char("abcdefgh ")
    model = tiny_model(vocab_size=tok.vocab_size)
    out = generate(model, tok, ["abc", "h"], max_new_tokens=5, temperature=0, stop_at_eot=False)
    assert len(out) == 2 and all(len(s) == 5 for s in out)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU (bash benchmarks/decode_gpu.sh runs this)")
def test_the_cuda_graph_replays_the_eager_step():
    model = tiny_model().cuda()
    prompts = [[5, 6, 7, 8, 9, 10], [11, 12], [13]]
    cfg = SamplingConfig(max_new_tokens=100, temperature=0, repetition_penalty=1.3, stop_at_eot=False)  # slides too
    assert generate_ids(model, prompts, cfg, 0) == generate_ids(model, prompts, cfg, 0, use_cache=False)
    sampled = SamplingConfig(max_new_tokens=40, temperature=1.0, top_k=50, top_p=0.9, seed=3)
    assert generate_ids(model, prompts, sampled, 0) == generate_ids(model, prompts, sampled, 0, static=False)


@pytest.mark.parametrize("static", list(STEPS.values()), ids=list(STEPS))
def test_presence_and_frequency_penalties_keep_a_generated_token_from_winning_again(static):
    model = tiny_model()  # its logits differ by less than 4: a penalty of 2 + 2 outweighs any difference
    cfg = SamplingConfig(max_new_tokens=30, temperature=0, stop_at_eot=False, presence_penalty=2, frequency_penalty=2)
    rows = generate_ids(model, [[1, 2, 3], [4]], cfg, eot_id=0, static=static)
    assert [len(set(row)) for row in rows] == [30, 30]
