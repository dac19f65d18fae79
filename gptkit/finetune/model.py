"""A pretrained GPT plus GPT-1's task head W_y on the final hidden state at the extract token.

The checkpoint is an ordinary model directory (config.json + model.safetensors with the GPT's own
tensor names + tokenizer files, so `gptkit.load` still reads it as a language model) plus
head.json (task, label names) and head.safetensors (W_y).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn as nn

from gptkit.checkpoint import resolve_model_dir
from gptkit.errors import GptkitError
from gptkit.finetune.data import Labels
from gptkit.io import write_text
from gptkit.model import GPT
from gptkit.model.loss import IGNORE_INDEX, linear_cross_entropy
from gptkit.tensor_io import load_tensors, save_tensors
from gptkit.tokenizer import Tokenizer

HEAD_CONFIG = "head.json"
HEAD_WEIGHTS = "head.safetensors"


def grow_vocabulary(gpt: GPT, new_ids: list[int]) -> None:
    """Give the embedding a row for every new token id, the new rows drawn from N(0, 0.02)."""
    if not new_ids:
        return
    old = gpt.wte.weight
    size = max(gpt.config.vocab_size, max(new_ids) + 1)
    if size > old.shape[0]:
        wte = nn.Embedding(size, old.shape[1], device=old.device, dtype=old.dtype)
        with torch.no_grad():
            wte.weight[: old.shape[0]] = old
        gpt.wte = wte
        gpt.config = gpt.config.replace(vocab_size=size)
    with torch.no_grad():
        gpt.wte.weight[new_ids] = torch.randn(len(new_ids), old.shape[1], device=old.device, dtype=old.dtype) * 0.02


def sequence_weights(mask: torch.Tensor) -> torch.Tensor:
    """(N, T) attention mask -> (N, T-1) weights of the next-token targets: each sequence's real
    targets share 1/N, so the weighted sum is the mean over sequences of each sequence's mean."""
    real = mask[:, 1:].float()
    return real / real.sum(1, keepdim=True).clamp_min(1) / len(mask)


class TaskModel(nn.Module):
    """GPT + dropout + linear head. forward: ids (B, K, T) -> scores (B, classes) or (B, K)."""

    def __init__(self, gpt: GPT, labels: Labels, dropout: float = 0.1):
        super().__init__()
        self.gpt, self.labels, self.dropout_p = gpt, labels, dropout
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(gpt.config.n_embd, labels.n_outputs, device=gpt.wte.weight.device)  # W_y
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, lm_loss: bool = False,
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(task scores, and with ``lm_loss`` the auxiliary L1: averaged over each sequence's real
        tokens, then over sequences, as GPT-1's code does). L1 is computed here, in the forward that
        DDP, FSDP and compile wrap, by the fused loss: the (B*K, T, vocab) logits are never made."""
        B, K, T = ids.shape
        flat_mask = mask.view(B * K, T)
        hidden = self.gpt(ids.view(B * K, T), attention_mask=flat_mask, return_hidden=True)  # (B*K, T, C)
        last = flat_mask.sum(1) - 1  # the extract token closes every sequence
        h = hidden[torch.arange(B * K, device=ids.device), last].view(B, K, -1)  # (B, K, C)
        if self.labels.task == "choice":
            scores = self.head(self.dropout(h)).squeeze(-1)  # one score per choice: (B, K)
        else:
            scores = self.head(self.dropout(h.sum(1)))  # similarity adds both orders; else K = 1
        if not lm_loss:
            return scores, None
        targets = ids.view(B * K, T)[:, 1:].masked_fill(flat_mask[:, 1:] == 0, IGNORE_INDEX)
        l1 = linear_cross_entropy(hidden[:, :-1], self.gpt.wte.weight, targets, weights=sequence_weights(flat_mask))
        return scores, l1

    @torch.no_grad()
    def probabilities(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Softmax over classes or choices (B, n), or the regression score (B,)."""
        scores, _ = self(ids, mask)
        return scores.squeeze(-1).float() if self.labels.regression else scores.float().softmax(-1)

    # --- checkpoints ------------------------------------------------------------------------------

    def save_pretrained(self, directory: str | Path, tokenizer: Tokenizer | None = None) -> None:
        directory = Path(directory)
        self.gpt.save_pretrained(directory, tokenizer)
        save_tensors(directory / HEAD_WEIGHTS, dict(self.head.state_dict()))
        head = {**asdict(self.labels), "dropout": self.dropout_p}
        write_text(directory / HEAD_CONFIG, json.dumps(head, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> TaskModel:
        directory = resolve_model_dir(path)
        if not (directory / HEAD_CONFIG).is_file():
            raise GptkitError(f"{directory} holds no task head ({HEAD_CONFIG}); fine-tune it with `gptkit finetune`")
        head = json.loads((directory / HEAD_CONFIG).read_text(encoding="utf-8"))
        dropout = head.pop("dropout")
        gpt = GPT.from_directory(directory, device=device, dtype=torch.float32)
        model = cls(gpt, Labels(**head), dropout)
        model.head.load_state_dict(load_tensors(directory / HEAD_WEIGHTS, device=device))
        return model.eval()


def load_task_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[TaskModel, Tokenizer]:
    """A fine-tuned model and its tokenizer (which knows the start, delimiter and extract tokens)."""
    model = TaskModel.from_pretrained(path, device)
    return model, Tokenizer.load(resolve_model_dir(path))
