"""The optimizers (AdamW with decay on matrices only, or Muon for the blocks' matrices beside it),
the learning-rate schedule, and (de)serialising optimizer state as plain tensors + JSON so
checkpoints never need pickle."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from gptkit.train.distributed import full_tensor, shard_like


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, betas: tuple[float, float],
                   device_type: str, muon_lr: float | None = None, muon_momentum: float = 0.9) -> torch.optim.AdamW:
    """AdamW, with weight decay on weight matrices and embeddings and none on biases and LayerNorm
    gains; with ``muon_lr``, the blocks' weight matrices take Muon's update instead (MuonAdamW)."""
    params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    muon = [p for name, p in params if muon_lr is not None and p.dim() == 2 and is_block_matrix(name)]
    taken = {id(p) for p in muon}
    rest = [p for _, p in params if id(p) not in taken]
    groups = [
        {"params": [p for p in rest if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0},
    ]
    if not muon:
        return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=device_type == "cuda")
    groups.append({"params": muon, "weight_decay": weight_decay, "muon": True, "lr_scale": muon_lr / lr,
                   "momentum": muon_momentum})
    # not fused: the grad scaler would then leave skipping an overflowed step to the optimizer, which
    # Muon's groups do not check; unfused, the scaler skips the whole step
    return MuonAdamW(groups, lr=lr, betas=betas)


def is_block_matrix(name: str) -> bool:
    """A Transformer block's weight matrix (attention and MLP), what Muon is for; not the embeddings,
    the tied output layer or a fine-tuning head."""
    return name.startswith("h.") or ".h." in name


class MuonAdamW(torch.optim.AdamW):
    """AdamW, except for the groups marked ``muon``, which take Muon's update (Jordan et al. 2024): SGD
    momentum (Nesterov) made orthogonal by a Newton-Schulz iteration, as torch.optim.Muon. One optimizer,
    so checkpoints, torch.distributed.checkpoint and the grad scaler treat it like AdamW.

    torch.optim.Muon runs the iteration in bf16, which CPUs without bf16 matrix units take ~20x longer
    over than fp32; here it runs in bf16 on GPUs and in fp32 elsewhere (``orthogonalize``). The learning
    rate is in AdamW's units: each matrix's is scaled by 0.2 sqrt(its larger side) (torch's
    ``match_rms_adamw``). A Muon group's ``lr_scale`` is its multiple of the schedule's lr, its
    ``momentum`` Muon's."""

    NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # the quintic of torch.optim.Muon and Keller Jordan's Muon
    NS_STEPS = 5
    CHUNK = 16  # matrices whole at once: under FSDP each is gathered whole, so not the whole model's

    @torch.no_grad()
    def step(self, closure=None):
        groups = self.param_groups
        for group in groups:
            if group.get("muon"):
                self._muon_step(group)
        self.param_groups = [group for group in groups if not group.get("muon")]  # AdamW's step: the rest
        try:
            return super().step(closure)
        finally:
            self.param_groups = groups

    def _muon_step(self, group: dict) -> None:
        params = [p for p in group["params"] if p.grad is not None]
        for start in range(0, len(params), self.CHUNK):
            self._muon_update(group, params[start:start + self.CHUNK])

    def _muon_update(self, group: dict, params: list[torch.Tensor]) -> None:
        momentum, updates = group["momentum"], []
        for p in params:
            state = self.state[p]
            if not state:  # a "step" too, which AdamW's loading expects of every state
                state.update(step=torch.tensor(0.0), momentum_buffer=torch.zeros_like(p))
            state["step"] += 1
            buf = state["momentum_buffer"]
            buf.lerp_(p.grad, 1 - momentum)
            # Nesterov; the iteration needs the whole matrix: FSDP's ranks each gather it
            updates.append(full_tensor(p.grad.lerp(buf, momentum)))
        for p, update in zip(params, orthogonalize(updates, self.NS_COEFFICIENTS, self.NS_STEPS)):
            update = shard_like(update, p)  # under FSDP each rank keeps its own shard
            p.mul_(1 - group["lr"] * group["weight_decay"])
            p.add_(update.to(p.dtype), alpha=-group["lr"] * 0.2 * math.sqrt(max(p.shape)))


def orthogonalize(grads: list[torch.Tensor], coefficients: tuple[float, float, float], steps: int) -> list[torch.Tensor]:
    """The Newton-Schulz iteration that takes each G = U S V^T to about U V^T (its singular values land
    in roughly [0.5, 1.5], which trains as well): on GPUs as torch.optim.Muon, each matrix in bf16; on
    CPUs, which lack bf16 matrix units, in fp32 on the small Gram matrices (``newton_schulz_gram``)."""
    if grads and grads[0].is_cuda:
        return [newton_schulz(g.to(torch.bfloat16), coefficients, steps) for g in grads]
    return newton_schulz_gram([g.float() for g in grads], coefficients, steps)


def newton_schulz(g: torch.Tensor, coefficients: tuple[float, float, float], steps: int) -> torch.Tensor:
    """The iteration on X itself: X <- aX + (bA + cA^2) X with A = X X^T, in X's dtype."""
    a, b, c = coefficients
    x = g if g.size(0) <= g.size(1) else g.mT  # (short side, long side): the Gram matrix is the small one
    x = x / x.norm().clamp(min=1e-7)  # singular values at most 1
    for _ in range(steps):
        gram = x @ x.mT
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x if g.size(0) <= g.size(1) else x.mT


def newton_schulz_gram(grads: list[torch.Tensor], coefficients: tuple[float, float, float], steps: int) -> list[torch.Tensor]:
    """The same iteration (in fp32: in bf16 the Gram matrices' errors compound) on the Gram matrices.
    Every iterate is X_k = Q_k X_0 with Q_k a polynomial in X_0 X_0^T, so with A_k = X_k X_k^T and
    P_k = aI + bA_k + cA_k^2 (all commuting): Q_k+1 = P_k Q_k and A_k+1 = P_k A_k P_k. Those products
    are (short side)^2, batched over the matrices sharing a short side (a block's four all do), and
    the long side is touched twice: ~1.5x fewer flops than ``newton_schulz`` on GPT's shapes, and a
    few batched calls for many small ones."""
    a, b, c = coefficients
    wide = [g.size(0) <= g.size(1) for g in grads]
    xs = [g if w else g.mT for g, w in zip(grads, wide)]
    xs = [x / x.norm().clamp(min=1e-7) for x in xs]
    out: list[torch.Tensor] = list(xs)
    alike: dict[tuple, list[int]] = {}
    for i, x in enumerate(xs):
        alike.setdefault((x.size(0), x.device), []).append(i)
    for (n, device), members in alike.items():
        eye = torch.eye(n, device=device)
        gram = torch.stack([xs[i] @ xs[i].mT for i in members])  # (k, n, n)
        q = eye.expand_as(gram)
        for step in range(steps):
            p = torch.baddbmm(gram, gram, gram, beta=b, alpha=c) + a * eye
            q, gram = p if step == 0 else p @ q, p @ gram @ p
        for i, qi in zip(members, q):
            out[i] = qi @ xs[i]
    return [x if w else x.mT for x, w in zip(out, wide)]


def lr_at(step: int, max_lr: float, min_lr: float, warmup: int, total: int, schedule: str = "cosine") -> float:
    """Linear warmup to max_lr over ``warmup`` steps, then cosine decay to min_lr at ``total`` (and
    min_lr after it), or with ``schedule`` "noam" the Transformer's max_lr * sqrt(warmup / step),
    never below min_lr (Vaswani et al. 2017, section 5.3; DialoGPT's)."""
    if step < warmup:
        return max_lr * (step + 1) / warmup
    if schedule == "noam":
        return max(min_lr, max_lr * math.sqrt(max(1, warmup) / (step + 1)))
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)


def ramp_at(step: int, full: int, start: int, ramp: int) -> int:
    """A size that grows with training (the batch's rows, the windows' length): ``start`` growing
    linearly to ``full`` over ``ramp`` steps, in whole multiples of ``start`` so that few shapes are
    ever run (a compiled model meets each once). A start not below ``full`` is no ramp."""
    if step >= ramp or start >= full:
        return full
    grown = start + (full - start) * step / ramp
    return min(full, int(grown // start) * start)


def optimizer_to_tensors(optimizer: torch.optim.Optimizer, prefix: str = "optim") -> tuple[dict, dict]:
    """(tensors, json-able meta) holding the optimizer's whole state."""
    state = optimizer.state_dict()
    tensors = {f"{prefix}.{pid}.{key}": value for pid, slots in state["state"].items()
               for key, value in slots.items()}
    return tensors, {"param_groups": state["param_groups"]}


def optimizer_from_tensors(optimizer: torch.optim.Optimizer, tensors: dict, meta: dict, prefix: str = "optim") -> None:
    optimizer.load_state_dict(optimizer_state(tensors, meta, prefix))


def optimizer_state(tensors: dict, meta: dict, prefix: str = "optim") -> dict:
    """The optimizer state dict (keyed by parameter index) that ``optimizer_to_tensors`` took apart."""
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}
