"""Loss helpers beside the model, so every trainer and scorer computes L1 the same way."""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def lm_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy L1 (nats). logits (B, T, V), targets (B, T); IGNORE_INDEX is skipped."""
    loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX,
                           reduction=reduction)
    return loss if reduction != "none" else loss.view(targets.shape)
