"""The one training loop. Pretraining, fine-tuning and dialogue training differ only in the batch
source and the loss function handed to Trainer; schedules, clipping, accumulation, autocast,
compile, evaluation, logging, progress and exact-resume checkpoints are written once, here."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch
from tqdm import tqdm

from gptkit.checkpoint import LATEST, load_training_state, save_checkpoint
from gptkit.device import autocast_dtype, enable_tf32
from gptkit.io import load_tensors, write_text
from gptkit.model import GPT, lm_loss
from gptkit.model.gpt import WEIGHTS_NAME, check_state_dict
from gptkit.train.config import TRAIN_CONFIG, TrainConfig
from gptkit.train.optim import (
    lr_at,
    make_optimizer,
    optimizer_from_tensors,
    optimizer_to_tensors,
)
from gptkit.train.plot import plot_losses, read_metrics

Batch = tuple[torch.Tensor, ...]
LossFn = Callable[[GPT, Batch], torch.Tensor]
log = logging.getLogger("gptkit")


class BatchSource(Protocol):
    def next_batch(self) -> Batch: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


def language_model_loss(model: GPT, batch: Batch) -> torch.Tensor:
    """L1: next-token cross-entropy of (x, y) windows."""
    x, y = batch
    return lm_loss(model(x), y)


class Trainer:
    def __init__(self, cfg: TrainConfig, model: GPT, tokenizer, train_batches: BatchSource,
                 val_batches: list[Batch] | None = None, loss_fn: LossFn = language_model_loss,
                 progress: bool = True, desc: str = "pretraining"):
        cfg.validate()
        self.cfg, self.model, self.tokenizer = cfg, model, tokenizer
        self.train_batches, self.val_batches, self.loss_fn = train_batches, val_batches, loss_fn
        self.progress, self.desc = progress, desc
        self.device = next(model.parameters()).device
        self.amp_dtype = autocast_dtype(self.device, cfg.dtype)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2), self.device.type)
        self.forward_model = torch.compile(model) if cfg.compile else model
        self.out = Path(cfg.out)
        self.metrics_path = self.out / "metrics.jsonl"
        self.step = 0
        self.stop_requested = False  # set by a subclass's evaluate() to stop early

    # --- one step ---------------------------------------------------------------------------

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _to_device(self, batch: Batch) -> Batch:
        return tuple(t.to(self.device, non_blocking=True) for t in batch)

    def learning_rate(self) -> float:
        """The learning rate of the next step. Fine-tuning overrides it (GPT-1 decays linearly)."""
        cfg = self.cfg
        return lr_at(self.step, cfg.lr, cfg.min_lr if cfg.min_lr is not None else cfg.lr / 10,
                     cfg.warmup_steps, cfg.max_steps)

    def train_step(self) -> dict:
        """One optimizer step over ``grad_accum`` micro-batches; returns what the log records."""
        cfg = self.cfg
        lr = self.learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        total, tokens = torch.zeros((), device=self.device), 0
        for _ in range(cfg.grad_accum):
            batch = self._to_device(self.train_batches.next_batch())
            tokens += batch[0].numel()
            with self._autocast():
                loss = self.loss_fn(self.forward_model, batch) / cfg.grad_accum
            self.scaler.scale(loss).backward()
            total += loss.detach()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip).item()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return {"loss": total.item(), "lr": lr, "grad_norm": grad_norm, "tokens": tokens}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Validation metrics, logged with the step. Fine-tuning overrides this (accuracy, F1, ...)."""
        if not self.val_batches:
            return {}
        self.model.eval()
        losses = []
        for batch in self.val_batches:
            with self._autocast():
                losses.append(self.loss_fn(self.forward_model, self._to_device(batch)).item())
        self.model.train()
        return {"val_loss": sum(losses) / len(losses)}

    # --- checkpoints --------------------------------------------------------------------------

    def save(self) -> Path:
        tensors, optim_meta = optimizer_to_tensors(self.optimizer)
        tensors["rng.cpu"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        meta = {"step": self.step, "optimizer": optim_meta, "loader": self.train_batches.state_dict(),
                "scaler": self.scaler.state_dict(), "train_config": json.loads(self.cfg.to_json())}
        return save_checkpoint(self.out, self.step, self.model, self.tokenizer, tensors, meta,
                               keep=self.cfg.keep_checkpoints)

    def load_weights(self, directory: Path) -> None:
        """Put a checkpoint's weights into the model being trained (fine-tuning adds its head)."""
        weights = load_tensors(directory / WEIGHTS_NAME, device=self.device)
        check_state_dict(self.model, weights, directory / WEIGHTS_NAME)
        self.model.load_state_dict(weights)

    def restore(self) -> None:
        """Continue the run in ``out`` exactly where its newest checkpoint left it."""
        directory, tensors, meta = load_training_state(self.out)
        self.load_weights(directory)
        optimizer_from_tensors(self.optimizer, tensors, meta["optimizer"])
        self.train_batches.load_state_dict(meta["loader"])
        if meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])
        torch.set_rng_state(tensors["rng.cpu"].cpu())
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"].cpu(), self.device)
        self.step = meta["step"]
        # Forget what the interrupted run logged after this checkpoint: those steps are redone.
        kept = [r for r in read_metrics(self.metrics_path) if r["step"] <= self.step]
        write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))

    # --- the loop -----------------------------------------------------------------------------

    def _log(self, record: dict) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def fit(self) -> dict:
        cfg = self.cfg
        enable_tf32(self.device)
        self.out.mkdir(parents=True, exist_ok=True)
        write_text(self.out / TRAIN_CONFIG, cfg.to_json())
        if cfg.resume:
            self.restore()
        else:
            if (self.out / LATEST).exists():
                log.warning("starting a new run in %s: its checkpoints will be replaced as this run saves "
                            "(use --resume to continue it instead)", self.out)
            self.metrics_path.unlink(missing_ok=True)  # a fresh run starts a fresh log
        self.model.train()
        bar = tqdm(total=cfg.max_steps, initial=self.step, desc=self.desc, unit="step",
                   disable=not self.progress, dynamic_ncols=True)
        val_loss = None
        tok_rate = None
        while self.step < cfg.max_steps and not self.stop_requested:
            t0 = time.perf_counter()
            stats = self.train_step()
            rate = stats.pop("tokens") / (time.perf_counter() - t0)
            tok_rate = rate if tok_rate is None else 0.9 * tok_rate + 0.1 * rate
            record = {"step": self.step, **stats, "tokens_per_sec": rate}
            last = self.step == cfg.max_steps
            if (cfg.eval_every and self.step % cfg.eval_every == 0) or last:
                metrics = self.evaluate()
                record.update(metrics)
                val_loss = metrics.get("val_loss", val_loss)
                last = last or self.stop_requested
            self._log(record)
            bar.set_postfix(loss=f"{stats['loss']:.3f}", val=f"{val_loss:.3f}" if val_loss is not None else "-",
                            tok_s=f"{tok_rate:,.0f}")
            bar.update(1)
            if (cfg.save_every and self.step % cfg.save_every == 0) or last:
                self.save()
        bar.close()
        return {"step": self.step, "val_loss": val_loss, "metrics": str(self.metrics_path)}

    def plot(self, baseline: float | None = None) -> Path:
        data = self.cfg.data or "the bundled Shakespeare"
        title = f"{self.cfg.preset} on {data if isinstance(data, str) else ' + '.join(data)}"
        return plot_losses(self.metrics_path, self.out / "loss.png", baseline, title=title)
