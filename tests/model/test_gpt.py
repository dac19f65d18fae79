import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from gptkit import GPT, GPTConfig, GptkitError
from gptkit.model.attention import build_attention_mask
from tests.conftest import tiny_model


def test_logits_shape(variant_model):
    x = torch.randint(0, 256, (3, 11))
    assert variant_model(x).shape == (3, 11, 256)


def test_output_layer_is_tied_to_the_token_embedding():
    model = tiny_model()
    x = torch.randint(0, 256, (1, 5))
    hidden = model(x, return_hidden=True)
    torch.testing.assert_close(model(x), hidden @ model.wte.weight.T)
    assert not any("lm_head" in k for k in model.state_dict())


def test_post_ln_block_normalises_after_the_residual_add():
    model = tiny_model(ln_order="post")
    assert not hasattr(model, "ln_f")  # GPT-1 has no final LayerNorm
    hidden = model(torch.randint(0, 256, (2, 7)), return_hidden=True)
    # The last op of a post-LN block is LayerNorm (gain 1, bias 0 at init): unit variance per position.
    torch.testing.assert_close(hidden.var(-1, unbiased=False), torch.ones(2, 7), atol=1e-3, rtol=0)


def test_pre_ln_residual_projections_are_scaled_at_init():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=100, block_size=16, n_layer=8, n_head=4, n_embd=256))
    std = model.h[0].mlp.c_proj.weight.std().item()
    assert std == pytest.approx(0.02 / math.sqrt(2 * 8), rel=0.05)
    assert model.h[0].mlp.c_fc.weight.std().item() == pytest.approx(0.02, rel=0.05)
    post = GPT(GPTConfig(vocab_size=100, block_size=16, n_layer=8, n_head=4, n_embd=256, ln_order="post"))
    assert post.h[0].mlp.c_proj.weight.std().item() == pytest.approx(0.02, rel=0.05)


def test_sinusoidal_positions_have_no_parameters():
    model = tiny_model(position="sinusoidal")
    assert not hasattr(model, "wpe")
    assert model.num_parameters() == tiny_model().num_parameters() - 64 * 32


def test_causality(variant_model):
    x = torch.randint(0, 256, (1, 12))
    y = x.clone()
    y[0, 8:] = (y[0, 8:] + 1) % 256
    torch.testing.assert_close(variant_model(x)[:, :8], variant_model(y)[:, :8])


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_batch_equals_each_sequence_alone(variant_model, side):
    torch.manual_seed(1)
    seqs = [torch.randint(0, 256, (n,)) for n in (9, 4, 1, 6)]
    T = max(len(s) for s in seqs)
    batch = torch.zeros(len(seqs), T, dtype=torch.long)
    mask = torch.zeros(len(seqs), T, dtype=torch.long)
    for i, s in enumerate(seqs):
        where = slice(T - len(s), T) if side == "left" else slice(0, len(s))
        batch[i, where], mask[i, where] = s, 1
    out = variant_model(batch, attention_mask=mask)
    for i, s in enumerate(seqs):
        alone = variant_model(s[None])[0]
        rows = mask[i].bool()
        torch.testing.assert_close(out[i, rows], alone, atol=1e-5, rtol=1e-5)


def test_kv_cache_chunks_equal_one_full_forward(variant_model):
    x = torch.randint(0, 256, (2, 20))
    full = variant_model(x)
    cache = variant_model.row_cache(2)
    pieces, start = [], 0
    for size in (7, 1, 5, 1, 6):
        pieces.append(variant_model(x[:, start:start + size], kv_cache=cache.pages(torch.arange(start, start + size))))
        start += size
    torch.testing.assert_close(torch.cat(pieces, 1), full, atol=1e-5, rtol=1e-5)


def test_kv_cache_is_preallocated_and_never_grows():
    model = tiny_model()
    cache = model.row_cache(1)
    shape, ptr = cache.cache.k.shape, cache.cache.k.data_ptr()
    model(torch.randint(0, 256, (1, 5)), kv_cache=cache.pages(torch.arange(5)))
    model(torch.randint(0, 256, (1, 1)), kv_cache=cache.pages(torch.tensor([5])))
    assert cache.cache.k.shape == shape == (2, (2 + 4) * 16, 2, 16) and cache.cache.k.data_ptr() == ptr


def test_banded_mask_limits_attention_to_the_window():
    mask = build_attention_mask(6, None, window=3)[0, 0]
    expected = torch.tensor([[abs(q - k) < 3 and k <= q for k in range(6)] for q in range(6)])
    assert torch.equal(mask, expected)


def test_alternating_layers_are_dense_then_banded():
    cfg = GPTConfig.preset("tiny", attention="alternating", n_layer=4)
    assert [cfg.is_banded(i) for i in range(4)] == [False, True, False, True]


def test_band_matters_only_beyond_the_window():
    banded = tiny_model(attention="alternating", local_window=5)
    dense = tiny_model(attention="dense")
    dense.load_state_dict(banded.state_dict())
    x = torch.randint(0, 256, (1, 12))
    a, b = banded(x), dense(x)
    torch.testing.assert_close(a[:, :5], b[:, :5])  # within the window the band cuts nothing
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_sequence_longer_than_context_is_an_error():
    with pytest.raises(GptkitError, match="exceeds the context length 64"):
        tiny_model()(torch.zeros(1, 65, dtype=torch.long))


def test_dropout_is_active_only_in_training():
    model = tiny_model(embd_pdrop=0.5, attn_pdrop=0.5, resid_pdrop=0.5)
    x = torch.randint(0, 256, (1, 8))
    torch.testing.assert_close(model(x), model(x))
    model.train()
    assert not torch.allclose(model(x), model(x))


def test_matches_a_straightforward_reference_attention():
    model = tiny_model()
    x = torch.randint(0, 256, (2, 10))
    h = model.wte(x) + model.wpe(torch.arange(10))
    for block in model.h:
        a = block.ln_1(h)
        q, k, v = block.attn.c_attn(a).split(32, dim=2)
        q, k, v = (t.view(2, 10, 2, 16).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(16)
        att = att.masked_fill(torch.triu(torch.ones(10, 10, dtype=torch.bool), 1), float("-inf")).softmax(-1)
        h = h + block.attn.c_proj((att @ v).transpose(1, 2).reshape(2, 10, 32))
        h = h + block.mlp.c_proj(F.gelu(block.mlp.c_fc(block.ln_2(h)), approximate="tanh"))
    torch.testing.assert_close(model(x), model.ln_f(h) @ model.wte.weight.T, atol=1e-5, rtol=1e-5)


def test_loading_a_model_does_not_import_the_compiler(tmp_path):
    # nn.Embedding's init on the meta device imports torch._dynamo (2 s of every `gptkit generate`).
    tiny_model().save_pretrained(tmp_path)
    code = ("import sys; from gptkit.model import GPT; GPT.from_pretrained(sys.argv[1]); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

