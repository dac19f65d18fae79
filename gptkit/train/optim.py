"""AdamW with decay on matrices only, the learning-rate schedule, and (de)serialising optimizer
state as plain tensors + JSON so checkpoints never need pickle."""

from __future__ import annotations

import math

import torch
import torch.nn as nn


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, betas: tuple[float, float],
                   device_type: str) -> torch.optim.AdamW:
    """Weight decay on weight matrices and embeddings; none on biases and LayerNorm gains."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=device_type == "cuda")


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
