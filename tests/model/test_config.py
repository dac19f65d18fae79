import math
import resource

import pytest
import torch

from gptkit import GPT, GPTConfig, GptkitError
from gptkit.config import PRESETS
from gptkit.model import count_parameters, flops_per_token


@pytest.mark.parametrize("name, expected", [
    ("gpt2", 124_439_808),
    ("gpt2-medium", 354_823_168),
    ("gpt2-large", 774_030_080),
    ("gpt2-xl", 1_557_611_200),
    ("dialogpt-small", 124_439_808),
    ("gpt1", 116_534_784),  # openai-gpt: 40,478 tokens, 512 positions, no final LayerNorm
])
def test_published_parameter_counts_are_exact(name, expected):
    assert count_parameters(GPTConfig.preset(name)) == expected


@pytest.mark.parametrize("overrides", [{}, {"bias": False}, {"position": "sinusoidal"}, {"ln_order": "post"},
                                       {"attention": "alternating", "local_window": 4}])
def test_the_count_from_shapes_equals_the_modules_parameters(overrides):
    config = GPTConfig.preset("tiny", n_layer=3, **overrides)
    with torch.device("meta"):
        assert count_parameters(config) == GPT(config).num_parameters()


def test_gpt3_175b_is_counted_without_allocating():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    n = count_parameters(GPTConfig.preset("gpt3-175b"))
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert 174e9 < n < 176e9
    assert grown_mib < 200  # 175B fp32 weights would be 650 GiB


def test_gpt3_table_shapes():
    shapes = {name: (c.n_layer, c.n_embd, c.n_head, c.block_size) for name, c in PRESETS.items() if name.startswith("gpt3")}
    assert shapes["gpt3-small"] == (12, 768, 12, 2048)
    assert shapes["gpt3-175b"] == (96, 12288, 96, 2048)
    assert all(PRESETS[n].attention == "alternating" for n in shapes)
    assert len(shapes) == 8


def test_gpt1_is_post_ln_and_gpt2_pre_ln():
    assert GPTConfig.preset("gpt1").ln_order == "post"
    assert GPTConfig.preset("gpt2-xl").ln_order == "pre"
    assert GPTConfig.preset("gpt2-xl").n_head == 25


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(GptkitError, match="unknown preset 'gpt5'.*gpt2-medium"):
        GPTConfig.preset("gpt5")


def test_n_embd_must_divide_by_n_head():
    with pytest.raises(GptkitError, match="n_embd \\(100\\) must be divisible by n_head \\(3\\)"):
        GPTConfig(n_embd=100, n_head=3)


def test_bad_choice_is_named():
    with pytest.raises(GptkitError, match="ln_order must be one of pre, post"):
        GPTConfig(ln_order="middle")


def test_config_json_round_trip(tmp_path):
    cfg = GPTConfig.preset("tiny", attention="alternating", position="sinusoidal")
    cfg.save(tmp_path / "config.json")
    assert GPTConfig.load(tmp_path / "config.json") == cfg


def test_unknown_config_keys_are_rejected():
    with pytest.raises(GptkitError, match="unknown GPTConfig keys: n_layers"):
        GPTConfig.from_dict({"n_layers": 3})


def test_flops_per_token_is_6n_plus_attention():
    cfg = GPTConfig.preset("gpt2")
    assert flops_per_token(cfg) == 6 * 124_439_808 + 12 * 12 * 768 * 1024


def test_long_context_presets_count_banded_attention_by_its_window():
    from gptkit.model.gpt import attention_flops_per_token, kv_cache_bytes

    cfg = GPTConfig.preset("banded-8k")
    flops = attention_flops_per_token(cfg)
    assert flops == {"dense": 12 * 2 * 128 * 8192, "banded": 12 * 2 * 128 * 256}
    kv = kv_cache_bytes(cfg)
    assert kv["dense"] == 2 * 8192 * 2 * 128 * 4 and kv["banded"] == 2 * 272 * 2 * 128 * 4  # a ring of 17 blocks
    assert sum(kv.values()) <= 0.6 * sum(kv_cache_bytes(cfg.replace(attention="dense")).values())


def test_a_gpt3_style_model_trains_at_a_4096_token_context():
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("banded-4k"))
    ids = torch.randint(0, 96, (1, 4097))
    loss = model(ids[:, :-1], targets=ids[:, 1:])
    loss.backward()
    assert loss.item() == pytest.approx(math.log(96), rel=0.1)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
