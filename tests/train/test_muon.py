"""Muon beside AdamW (gptkit.train.optim.MuonAdamW): the update is torch.optim.Muon's, the rest is
torch.optim.AdamW's, and its state round-trips through a checkpoint like AdamW's."""

import json

import pytest
import torch

from gptkit.train.optim import (
    MuonAdamW,
    make_optimizer,
    newton_schulz,
    newton_schulz_gram,
    optimizer_from_tensors,
    optimizer_to_tensors,
    orthogonalize,
)
from tests.conftest import tiny_model

COEFFICIENTS, STEPS = MuonAdamW.NS_COEFFICIENTS, MuonAdamW.NS_STEPS


SHAPES = [(48, 16), (16, 48), (32, 32), (16, 64)]


def test_orthogonalize_puts_every_singular_value_near_one():
    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(shape, generator=gen) for shape in SHAPES]
    for g, o in zip(grads, orthogonalize(grads, COEFFICIENTS, STEPS)):
        s = torch.linalg.svdvals(o)
        assert s.min() > 0.5 and s.max() < 1.5  # the quintic's band: U S' V^T with S' in about [0.7, 1.2]
        assert o.shape == g.shape


@pytest.mark.parametrize("rank_noise", [1.0, 1e-2, 1e-6])  # full rank, nearly rank 4, rank 4 to fp32's precision
def test_the_iteration_on_gram_matrices_is_the_iteration_on_the_matrices(rank_noise):
    gen = torch.Generator().manual_seed(1)
    grads = [torch.randn(m, 4, generator=gen) @ torch.randn(4, n, generator=gen) + rank_noise * torch.randn(m, n, generator=gen)
             for m, n in SHAPES]
    for g, o in zip(grads, newton_schulz_gram(grads, COEFFICIENTS, STEPS)):
        # within 1.3e-4 of the iteration in fp64 (torch.optim.Muon's, in bf16, is ~4e-3 off)
        torch.testing.assert_close(o.double(), newton_schulz(g.double(), COEFFICIENTS, STEPS), atol=3e-4, rtol=0)


def test_the_blocks_matrices_take_muon_and_the_rest_adamw():
    model = tiny_model()
    opt = make_optimizer(model, 1e-3, 0.1, (0.9, 0.95), "cpu", muon_lr=3e-3)
    names = {p: name for name, p in model.named_parameters()}
    muon = [names[p] for g in opt.param_groups if g.get("muon") for p in g["params"]]
    rest = [names[p] for g in opt.param_groups if not g.get("muon") for p in g["params"]]
    assert muon and all(n.startswith("h.") and n.endswith("weight") and "ln_" not in n for n in muon)
    assert {"wte.weight", "wpe.weight"} <= set(rest) and not any(n.startswith("h.") and ".c_" in n and
                                                                   n.endswith("weight") for n in rest)
    assert make_optimizer(model, 1e-3, 0.1, (0.9, 0.95), "cpu").__class__ is torch.optim.AdamW


def steps(opt, params, n=3):
    for i in range(n):
        for j, p in enumerate(params):
            p.grad = torch.randn(p.shape, generator=torch.Generator().manual_seed(100 * i + j))
        opt.step()


def test_one_optimizer_gives_torchs_muon_update_and_torchs_adamw_update():
    torch.manual_seed(0)
    matrix, vector = torch.randn(64, 16), torch.randn(16)
    ours = [matrix.clone().requires_grad_(), vector.clone().requires_grad_()]
    opt = MuonAdamW([{"params": [ours[0]], "weight_decay": 0.1, "muon": True, "lr_scale": 2.0, "momentum": 0.95},
                     {"params": [ours[1]], "weight_decay": 0.0}], lr=1e-2, betas=(0.9, 0.95))
    opt.param_groups[0]["lr"] = 2e-2  # what the Trainer sets: lr x lr_scale
    ref_m, ref_v = matrix.clone().requires_grad_(), vector.clone().requires_grad_()
    muon = torch.optim.Muon([ref_m], lr=2e-2, weight_decay=0.1, momentum=0.95, adjust_lr_fn="match_rms_adamw")
    adamw = torch.optim.AdamW([ref_v], lr=1e-2, betas=(0.9, 0.95), weight_decay=0.0)
    steps(opt, ours)
    for i in range(3):  # the same gradients, each to its reference optimizer
        ref_m.grad = torch.randn(ref_m.shape, generator=torch.Generator().manual_seed(100 * i))
        ref_v.grad = torch.randn(ref_v.shape, generator=torch.Generator().manual_seed(100 * i + 1))
        muon.step()
        adamw.step()
    torch.testing.assert_close(ours[1], ref_v)  # AdamW's groups: exactly torch's AdamW
    # Muon's: torch's iteration runs in bf16, ours in fp32 on the CPU (3.4e-4 apart); momentum 0.9 for
    # 0.95 would be 1.2e-3 apart, a 10% larger lr 5e-3
    torch.testing.assert_close(ours[0], ref_m, atol=6e-4, rtol=0)
    assert not torch.equal(ours[0], matrix)


def test_muon_state_round_trips_through_plain_tensors():
    model = tiny_model()
    opt = make_optimizer(model, 1e-3, 0.1, (0.9, 0.95), "cpu", muon_lr=3e-3)
    model(torch.randint(0, 256, (2, 8))).sum().backward()
    opt.step()
    tensors, meta = optimizer_to_tensors(opt)
    json.dumps(meta)
    assert any(k.endswith("momentum_buffer") for k in tensors) and any(k.endswith("exp_avg") for k in tensors)
    fresh = make_optimizer(model, 1e-3, 0.1, (0.9, 0.95), "cpu", muon_lr=3e-3)
    optimizer_from_tensors(fresh, tensors, meta)
    assert [g.get("muon") for g in fresh.param_groups] == [g.get("muon") for g in opt.param_groups]
    for a, b in zip(opt.state.values(), fresh.state.values()):
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key])


def test_matrices_taken_a_chunk_at_a_time_get_the_same_update(monkeypatch):
    # under FSDP each matrix of a chunk is gathered whole: chunks bound that to CHUNK matrices
    after = []
    for chunk in (MuonAdamW.CHUNK, 2):
        monkeypatch.setattr(MuonAdamW, "CHUNK", chunk)
        torch.manual_seed(0)
        model = tiny_model()
        opt = make_optimizer(model, 1e-3, 0.1, (0.9, 0.95), "cpu", muon_lr=3e-3)
        assert sum(len(g["params"]) for g in opt.param_groups if g.get("muon")) > 2
        steps(opt, [p for g in opt.param_groups for p in g["params"]])
        after.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*after):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
