"""Supervised fine-tuning as in GPT-1: L3(C) = L2(C) + λ·L1(C) through the shared Trainer.

L2 is the task loss (cross-entropy over classes or choices, squared error for scores); L1 is the
language-model loss on the same inputs, averaged over each sequence and then over sequences, as the
original code does. The defaults are the paper's: lr 6.25e-5, batch 32, 3 epochs, linear warmup
over 0.2% of training then linear decay to 0, classifier dropout 0.1, weight decay 0.01.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gptkit.checkpoint import load
from gptkit.data.batches import EpochBatches
from gptkit.errors import GptkitError
from gptkit.finetune.data import (
    Encoded,
    Labels,
    Transform,
    add_special_tokens,
    collate,
    example_batches,
    read_examples,
)
from gptkit.finetune.metrics import task_metrics
from gptkit.finetune.model import TaskModel, grow_vocabulary
from gptkit.finetune.tasks import task_file
from gptkit.io import write_text
from gptkit.model import GPT
from gptkit.tokenizer import Tokenizer
from gptkit.train import distributed
from gptkit.train.trainer import Batch, Trainer, training_session
from gptkit.train_config import FinetuneConfig, TrainConfig


def task_loss(scores: torch.Tensor, targets: torch.Tensor, regression: bool) -> torch.Tensor:
    """L2: cross-entropy over classes or choices, squared error for a score."""
    if regression:
        return F.mse_loss(scores.squeeze(-1).float(), targets)
    return F.cross_entropy(scores.float(), targets)


def make_loss_fn(lm_coef: float, regression: bool):
    """The Trainer's loss function: L3 = L2 + λ·L1 (L1 is skipped when λ = 0). The model it is handed
    may be wrapped (DDP, FSDP, compile), so it only calls it."""

    def loss_fn(model: TaskModel, batch: Batch) -> torch.Tensor:
        ids, mask, targets = batch
        scores, l1 = model(ids, mask, lm_loss=bool(lm_coef))
        loss = task_loss(scores, targets, regression)
        return loss + lm_coef * l1 if lm_coef else loss

    return loss_fn


@torch.no_grad()
def predict_encoded(model: TaskModel, items: list[Encoded], batch_size: int = 32) -> np.ndarray:
    """Probabilities (N, n) or scores (N,). Each batch is padded only to its own longest sequence,
    and the attention mask hides the padding, so no example's output depends on its neighbours."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    for i in range(0, len(items), batch_size):
        ids, mask, _ = collate(items[i: i + batch_size])
        outputs.append(model.probabilities(ids.to(device), mask.to(device)).cpu().numpy())
    model.train(was_training)
    return np.concatenate(outputs)


class FinetuneTrainer(Trainer):
    """The shared loop with GPT-1's linear schedule, task metrics, early stopping and the best model
    written to the top of ``out`` (a model directory ``gptkit predict`` and ``from_pretrained`` read)."""

    def __init__(self, cfg: TrainConfig, model: TaskModel, tokenizer: Tokenizer, train_batches: EpochBatches,
                 valid: list[Encoded], lm_coef: float, patience: int, report: dict, progress: bool = True):
        loss_fn = make_loss_fn(lm_coef, model.labels.regression)
        super().__init__(cfg, model, tokenizer, train_batches, None, loss_fn, progress, "fine-tuning")
        self.valid, self.patience, self.report = valid, patience, report
        self.gold = np.array([it.target for it in valid])
        self.key = "pearson" if model.labels.regression else "accuracy"
        self.best: float | None = None
        self.since_best = 0

    def saved_weights(self, directory: Path) -> dict[str, torch.Tensor]:
        return TaskModel.from_pretrained(directory, self.device).state_dict()

    def empty_model(self) -> TaskModel:
        model = self.model
        return TaskModel(GPT(model.gpt.config), model.labels, model.dropout_p)

    def restore(self) -> None:
        """Resume, with the validation history (and so the best model and patience) up to the checkpoint."""
        super().restore()
        saved = json.loads((self.out / "metrics.json").read_text(encoding="utf-8"))
        for record in (r for r in saved["history"] if r["step"] <= self.step):
            self._track(record)

    def _track(self, record: dict) -> bool:
        """Add a validation to the report; True when it is the best so far."""
        self.report["history"].append(record)
        if self.best is None or record[self.key] > self.best:
            self.best, self.since_best = record[self.key], 0
            self.report["best"] = record
            return True
        self.since_best += 1
        self.stop_requested = self.since_best >= self.patience
        self.report["stopped_early"] = self.stop_requested
        return False

    def learning_rate(self) -> float:
        """Linear warmup, then linear decay to zero at the last step (GPT-1's schedule)."""
        cfg = self.cfg
        warm = (self.step + 1) / cfg.warmup_steps
        return cfg.lr * max(0.0, min(warm, (cfg.max_steps - self.step) / max(1, cfg.max_steps - cfg.warmup_steps)))

    def evaluate(self) -> dict[str, float]:
        """Every rank predicts the whole validation set (FSDP's ranks run the forward together); rank
        0's metrics decide for all, so every rank saves and stops at the same step."""
        probabilities = predict_encoded(self.model, self.valid)
        metrics = distributed.from_main(task_metrics(probabilities, self.gold, self.model.labels.regression))
        record = {"step": self.step, "epoch": round(self.step / self.train_batches.steps_per_epoch, 2), **metrics}
        if self._track(record):
            self.write_model(self.out)
        if self.main:
            write_text(self.out / "metrics.json", json.dumps(self.report, indent=2) + "\n")
        return metrics


def prepare_model(cfg: FinetuneConfig, labels: Labels, device: torch.device) -> tuple[TaskModel, Tokenizer]:
    """The pretrained GPT and its tokenizer, with start/delimiter/extract added to both."""
    gpt, tokenizer = load(cfg.init_from, device=device, dtype=torch.float32)
    _, new_ids = add_special_tokens(tokenizer)
    grow_vocabulary(gpt, new_ids)
    return TaskModel(gpt, labels, cfg.clf_dropout), tokenizer


def finetune(cfg: FinetuneConfig, progress: bool = True) -> dict:
    """Fine-tune, write the best model and metrics.json to ``cfg.out``; returns the metrics report.
    Under torchrun, as one process of the job (see gptkit.train.distributed)."""
    cfg.validate()
    with training_session(cfg) as device:
        return _finetune(cfg, device, progress)


def _finetune(cfg: FinetuneConfig, device: torch.device, progress: bool) -> dict:
    torch.manual_seed(cfg.seed)
    train_ex = read_examples(task_file(cfg.train, "train"), cfg.task)
    valid_ex = read_examples(task_file(cfg.valid, "valid"), cfg.task, scored=True)
    if len(valid_ex[0].seconds) != len(train_ex[0].seconds):
        raise GptkitError(f"{valid_ex[0].where}: {len(valid_ex[0].seconds)} choices, but the training file has "
                          f"{len(train_ex[0].seconds)}")
    if distributed.active() and len(train_ex) < cfg.batch_size:
        raise GptkitError(f"{cfg.train} has {len(train_ex)} examples, fewer than the --batch-size {cfg.batch_size} "
                          f"the {distributed.world_size()} processes share: use a smaller --batch-size")
    labels = Labels.infer(cfg.task, train_ex)
    model, tokenizer = prepare_model(cfg, labels, device)
    transform = Transform(cfg.task, tokenizer, model.gpt.config.block_size)
    batches = example_batches(transform.encode(train_ex, labels, cfg.train), cfg.batch_size, labels.regression, cfg.seed)
    valid = transform.encode(valid_ex, labels, cfg.valid)
    cfg = cfg.for_steps(batches.steps_per_epoch)
    report = {"config": dataclasses.asdict(cfg), "labels": labels.names,
              "metric": "pearson" if labels.regression else "accuracy",
              "majority_baseline": labels.majority_baseline(train_ex, valid_ex), "history": [], "best": None,
              "stopped_early": False}
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    FinetuneTrainer(cfg, model, tokenizer, batches, valid, cfg.lm_coef, cfg.patience, report, progress).fit()
    return report
