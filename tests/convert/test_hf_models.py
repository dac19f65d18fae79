"""Parity with the real `transformers` implementation: random reference models of each family,
saved by transformers, loaded by gptkit, give the same logits; exports load back in transformers."""

import json

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, OpenAIGPTConfig, OpenAIGPTLMHeadModel

from gptkit import GPT, GPTConfig, GptkitError, Tokenizer, load
from gptkit.checkpoint import load_model
from gptkit.convert import export_hf
from gptkit.data import shakespeare

GPT2_SHAPES = [dict(n_layer=2, n_embd=32, n_head=4), dict(n_layer=3, n_embd=50, n_head=25),
               dict(n_layer=1, n_embd=48, n_head=3)]


def hf_gpt2(seed=0, **shape):
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=300, n_positions=64, **shape)
    return GPT2LMHeadModel(cfg).eval()


def hf_gpt1(seed=0, **shape):
    torch.manual_seed(seed)
    cfg = OpenAIGPTConfig(vocab_size=300, n_positions=64, **shape)
    return OpenAIGPTLMHeadModel(cfg).eval()


def save_hf(model, path, safe=True):
    """As transformers saves it, or as the older pytorch_model.bin (a torch.save'd state dict)."""
    if safe:
        model.save_pretrained(path)
    else:
        model.config.save_pretrained(path)
        torch.save(model.state_dict(), path / "pytorch_model.bin")
    return path


def perturb_norms(model):
    """Random LayerNorm gains/biases, so parity tests see them (they start as ones and zeros)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model


def inputs():
    torch.manual_seed(1)
    random = torch.randint(0, 300, (3, 40))
    text = next(w["text"] for w in shakespeare() if w["name"] == "sonnets")[:2000].encode()
    real = torch.tensor([list(text[i: i + 40]) for i in (0, 500, 1000)])  # bytes as ids: real text statistics
    return [random, real]


def assert_same_logits(hf_model, ours):
    for x in inputs():
        with torch.no_grad():
            expected = hf_model(x).logits
        torch.testing.assert_close(ours(x), expected, atol=1e-4, rtol=1e-4)
        cache = ours.row_cache(x.shape[0])  # and through the KV cache, in two chunks
        first = ours(x[:, :25], kv_cache=cache.pages(torch.arange(25)))
        rest = ours(x[:, 25:], kv_cache=cache.pages(torch.arange(25, 40)))
        torch.testing.assert_close(torch.cat([first, rest], 1), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("shape", GPT2_SHAPES, ids=lambda s: f"{s['n_layer']}x{s['n_embd']}h{s['n_head']}")
@pytest.mark.parametrize("safe", [True, False], ids=["safetensors", "bin"])
def test_gpt2_layout_loads_with_the_same_logits(tmp_path, shape, safe):
    hf = perturb_norms(hf_gpt2(**shape))
    save_hf(hf, tmp_path, safe)
    assert (tmp_path / ("model.safetensors" if safe else "pytorch_model.bin")).exists()
    ours = load_model(tmp_path)
    assert ours.config.ln_order == "pre" and ours.config.n_head == shape["n_head"]
    assert_same_logits(hf, ours)


@pytest.mark.parametrize("shape", GPT2_SHAPES[:2], ids=lambda s: f"{s['n_layer']}x{s['n_embd']}h{s['n_head']}")
def test_gpt1_loads_with_the_same_logits(tmp_path, shape):
    hf = perturb_norms(hf_gpt1(**shape))
    hf.save_pretrained(tmp_path)
    ours = load_model(tmp_path)
    assert ours.config.ln_order == "post" and not hasattr(ours, "ln_f")
    assert_same_logits(hf, ours)


def test_greedy_generation_matches_transformers(tmp_path):
    from gptkit.inference import SamplingConfig, generate_ids

    hf = hf_gpt2(n_layer=2, n_embd=32, n_head=4)
    hf.save_pretrained(tmp_path)
    ours = load_model(tmp_path)
    prompt = torch.randint(0, 300, (1, 8))
    with torch.no_grad():
        expected = hf.generate(prompt, max_new_tokens=20, do_sample=False, pad_token_id=0)[0, 8:].tolist()
    got = generate_ids(ours, [prompt[0].tolist()], SamplingConfig(max_new_tokens=20, temperature=0, stop_at_eot=False), None)
    assert got[0] == expected


def test_load_in_bf16_goes_straight_to_that_dtype(tmp_path):
    hf_gpt2(n_layer=1, n_embd=32, n_head=4).save_pretrained(tmp_path)
    model = load_model(tmp_path, dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert not any(p.is_meta for p in model.parameters())


@pytest.mark.parametrize("ln_order, cls", [("pre", GPT2LMHeadModel), ("post", OpenAIGPTLMHeadModel)])
def test_export_loads_in_transformers_without_missing_or_unexpected_keys(tmp_path, ln_order, cls):
    torch.manual_seed(0)
    ours = perturb_norms(GPT(GPTConfig.preset("tiny", vocab_size=300, ln_order=ln_order))).eval()
    export_hf(ours, None, tmp_path)
    hf, info = cls.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    x = torch.randint(0, 300, (2, 30))
    with torch.no_grad():
        torch.testing.assert_close(hf.eval()(x).logits, ours(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("ln_order", ["pre", "post"])
def test_round_trip_gptkit_hf_gptkit_is_exact(tmp_path, ln_order):
    torch.manual_seed(0)
    ours = GPT(GPTConfig.preset("tiny", vocab_size=300, ln_order=ln_order))
    export_hf(ours, None, tmp_path / "hf")
    back = load_model(tmp_path / "hf")
    assert back.config.replace(embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0) == ours.config
    for name, tensor in ours.state_dict().items():
        assert torch.equal(back.state_dict()[name], tensor), name


def test_exported_gpt2_tokenizer_loads_in_transformers(tmp_path):
    from transformers import AutoTokenizer

    ours = GPT(GPTConfig.preset("tiny", vocab_size=50257))
    export_hf(ours, Tokenizer.gpt2(), tmp_path)
    hf_tok = AutoTokenizer.from_pretrained(tmp_path)
    text = "Hello world, 你好 🤗<|endoftext|>"
    assert hf_tok(text)["input_ids"] == Tokenizer.gpt2().encode(text)
    model, tok = load(tmp_path)  # and gptkit reads its own export back, tokenizer included
    assert tok.encode(text) == Tokenizer.gpt2().encode(text)


def test_export_refuses_what_transformers_cannot_express(tmp_path):
    model = GPT(GPTConfig.preset("tiny", attention="alternating"))
    with pytest.raises(GptkitError, match="alternating dense/banded attention"):
        export_hf(model, None, tmp_path)


# --- bad input ----------------------------------------------------------------------------------

def saved_gpt2(tmp_path):
    hf_gpt2(n_layer=1, n_embd=32, n_head=4).save_pretrained(tmp_path)
    return tmp_path


def rewrite_weights(path, change):
    from safetensors.torch import load_file, save_file

    state = load_file(path / "model.safetensors")
    change(state)
    save_file(state, path / "model.safetensors", metadata={"format": "pt"})


def test_missing_tensor_is_named_with_its_shape(tmp_path):
    rewrite_weights(saved_gpt2(tmp_path), lambda s: s.pop("transformer.h.0.mlp.c_fc.bias"))
    with pytest.raises(GptkitError, match=r"missing tensor h\.0\.mlp\.c_fc\.bias \[128\]"):
        load_model(tmp_path)


def test_extra_tensor_is_named(tmp_path):
    rewrite_weights(saved_gpt2(tmp_path), lambda s: s.update({"transformer.h.0.extra.weight": torch.zeros(3)}))
    with pytest.raises(GptkitError, match=r"unexpected tensor h\.0\.extra\.weight \[3\]"):
        load_model(tmp_path)


def test_misshaped_tensor_gives_both_shapes(tmp_path):
    rewrite_weights(saved_gpt2(tmp_path), lambda s: s.update({"transformer.wpe.weight": torch.zeros(10, 32)}))
    with pytest.raises(GptkitError, match=r"tensor wpe\.weight has shape \[10, 32\], expected \[64, 32\]"):
        load_model(tmp_path)


def test_unknown_model_type_lists_the_supported_ones(tmp_path):
    saved_gpt2(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "llama"}))
    with pytest.raises(GptkitError, match="model_type 'llama' is not supported; supported: gpt2, openai-gpt"):
        load_model(tmp_path)


def test_truncated_safetensors_is_reported(tmp_path):
    saved_gpt2(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(GptkitError, match="truncated or corrupt"):
        load_model(tmp_path)


def test_truncated_bin_is_reported(tmp_path):
    save_hf(hf_gpt2(n_layer=1, n_embd=32, n_head=4), tmp_path, safe=False)
    weights = tmp_path / "pytorch_model.bin"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(GptkitError, match="truncated or corrupt"):
        load_model(tmp_path)


def sharded_gpt2(tmp_path, weight_map=None):
    """A one-shard checkpoint as transformers writes a sharded one: the shard plus an index naming it."""
    saved_gpt2(tmp_path)
    (tmp_path / "model.safetensors").rename(tmp_path / "model-00001-of-00001.safetensors")
    from safetensors import safe_open

    with safe_open(tmp_path / "model-00001-of-00001.safetensors", "pt") as f:
        names = dict.fromkeys(f.keys(), "model-00001-of-00001.safetensors")
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {**names, **(weight_map or {})}}))
    return tmp_path


def test_sharded_checkpoint_loads(tmp_path):
    assert load_model(sharded_gpt2(tmp_path)).config.n_layer == 1


@pytest.mark.parametrize("entry, message", [
    ({"transformer.wte.weight": 3}, r'weight_map\["transformer.wte.weight"\] must be a non-empty string, got 3'),
    ({"transformer.wte.weight": None}, "must be a non-empty string, got null"),
    ({"transformer.wte.weight": "model-00002-of-00002.safetensors"}, "which is not a file beside it"),
    ({"transformer.wte.weight": "../model-00001-of-00001.safetensors"}, "which is not a file beside it"),
])
def test_index_entries_that_name_no_shard_are_named(tmp_path, entry, message):
    with pytest.raises(GptkitError, match=r"model\.safetensors\.index\.json: .*" + message):
        load_model(sharded_gpt2(tmp_path, entry))


def test_index_without_a_weight_map(tmp_path):
    sharded_gpt2(tmp_path)
    (tmp_path / "model.safetensors.index.json").write_text('{"weight_map": ["a"]}')
    with pytest.raises(GptkitError, match="weight_map must be a mapping"):
        load_model(tmp_path)
