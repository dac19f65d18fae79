"""The one training loop. Pretraining, fine-tuning and dialogue training differ only in the batch
source and the loss function handed to Trainer; schedules, clipping, accumulation, autocast,
compile, evaluation, logging, progress and exact-resume checkpoints are written once, here.

Under torchrun the same loop runs on every rank (gptkit.train.distributed): rank 0 alone logs and
writes; checkpoints are sharded with torch.distributed.checkpoint beside the usual model files.
Loss and gradient norm stay on the device between log lines: reading them is a host sync, done once
every ``log_every`` steps, so the host keeps queueing work ahead of the GPU."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import torch
from tqdm import tqdm

import gptkit.train.distributed as distributed
from gptkit import run_dir
from gptkit.checkpoint import (
    checkpoint_paths,
    commit_checkpoint,
    load_training_state,
    new_checkpoint_dir,
    prune_checkpoints,
    resume_checkpoint,
    save_checkpoint,
    set_aside_checkpoints,
)
from gptkit.device import autocast_dtype, enable_tf32
from gptkit.errors import GptkitError, RankError
from gptkit.io import read_json, write_text
from gptkit.model import GPT, lm_loss
from gptkit.model.gpt import WEIGHTS_NAME, check_state_dict
from gptkit.run_dir import TRAIN_CONFIG
from gptkit.tensor_io import load_tensors
from gptkit.train.optim import (
    lr_at,
    make_optimizer,
    optimizer_from_tensors,
    optimizer_state,
    optimizer_to_tensors,
    ramp_at,
)
from gptkit.train.plot import plot_losses, read_metrics
from gptkit.train.time_left import TimeLeft
from gptkit.train_config import BEFORE_KNOB, TrainConfig

Batch = tuple[torch.Tensor, ...]
LossFn = Callable[[GPT, Batch], torch.Tensor]
log = logging.getLogger("gptkit")
# The bar's time left is the Trainer's own: tqdm's assumes every step costs the same, and under the ramps
# (--batch-ramp, --block-ramp) the last steps cost several times the first.
BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"
SHARDS = "distributed"  # a torchrun run's checkpoint: model + optimizer shards (torch.distributed.checkpoint)
SHARDED_STATE = "training_state.json"  # ... and the rest of its training state


class Diverged(GptkitError):
    """The loss or gradients stopped being finite. Every rank sees the same values, so rank 0 speaks."""


@contextlib.contextmanager
def training_session(cfg: TrainConfig) -> Iterator[torch.device]:
    """This process's device for a training command; under torchrun, inside the process group. Rank 0
    holds the run directory ``cfg.out`` throughout (gptkit.run_dir: one writer, and a run starts
    fresh, resumed or after the old one is moved aside); the other ranks start once it does."""
    with distributed.session(cfg.device) as device:
        owner = (run_dir.training_run(cfg.out, cfg.resume, cfg.overwrite, cfg.inputs()) if distributed.is_main()
                 else contextlib.nullcontext())
        with owner:
            distributed.barrier()
            yield device


class BatchSource(Protocol):
    """Where training batches come from. One may also have ``progress() -> dict``: what the log
    records of its position after each step (a weighted mixture: the epochs of each corpus)."""

    def next_batch(self) -> Batch: ...
    def shard(self, rank: int, world: int) -> None: ...  # under torchrun: take this rank's rows of each batch
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


def language_model_loss(model: GPT, batch: Batch) -> torch.Tensor:
    """L1: next-token cross-entropy of (x, y) windows, computed in the model's forward (so inside
    torch.compile's graph) without making the logits."""
    x, y = batch
    return model(x, targets=y)


def logits_language_model_loss(model: GPT, batch: Batch) -> torch.Tensor:
    """L1 the plain way: the whole (B, T, vocab) logits, then cross-entropy (``--no-fused-loss``)."""
    x, y = batch
    return lm_loss(model(x), y)


class Trainer:
    def __init__(self, cfg: TrainConfig, model: GPT, tokenizer, train_batches: BatchSource,
                 val_batches: list[Batch] | None = None, loss_fn: LossFn | None = None,
                 progress: bool = True, desc: str = "pretraining"):
        cfg.validate()
        if loss_fn is None:
            loss_fn = language_model_loss if cfg.fused_loss else logits_language_model_loss
        self.cfg, self.model, self.tokenizer = cfg, model, tokenizer
        self.train_batches, self.val_batches, self.loss_fn = train_batches, val_batches, loss_fn
        self.progress, self.desc = progress, desc
        self.device = next(model.parameters()).device
        self.amp_dtype = autocast_dtype(self.device, cfg.dtype)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.distributed, self.main = distributed.active(), distributed.is_main()
        if distributed.launched_by_torchrun() and not self.distributed:
            raise GptkitError(f"{desc} under torchrun: build the Trainer inside gptkit.train.distributed.session(device)")
        if self.distributed:
            world = distributed.world_size()
            train_batches.shard(distributed.rank(), world)
            if any(len(batch[0]) < world for batch in val_batches or ()):
                raise GptkitError(f"a validation batch has fewer rows than the {world} processes that share it: "
                                  "use a larger --batch-size or more validation data")
        # DDP around the model, or FSDP sharding it in place; the optimizer holds what it then owns.
        self.wrapped = distributed.wrap(model, cfg.parallel) if self.distributed else model
        self.optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2), self.device.type,
                                        cfg.muon_lr if cfg.optimizer == "muon" else None, cfg.muon_momentum)
        self.forward_model = torch.compile(self.wrapped, mode=cfg.compile_mode) if cfg.compile else self.wrapped
        self.out = Path(cfg.out)
        self.metrics_path = self.out / "metrics.jsonl"
        self.step = 0
        self.stop_requested = False  # set by a subclass's evaluate() to stop early
        self.time_before = 0.0  # seconds the run trained before this process resumed it
        self.unproven = False  # a checkpoint was saved that no finite loss after it has confirmed yet

    # --- one step ---------------------------------------------------------------------------

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _to_device(self, batch: Batch) -> Batch:
        """Copied from pinned memory on CUDA, so the copy does not stall the host queueing kernels."""
        if self.device.type == "cuda":
            batch = tuple(t.pin_memory() for t in batch)
        return tuple(t.to(self.device, non_blocking=True) for t in batch)

    def learning_rate(self) -> float:
        """The learning rate of the next step. Fine-tuning overrides it (GPT-1 decays linearly)."""
        cfg = self.cfg
        return lr_at(self.step, cfg.lr, cfg.min_lr if cfg.min_lr is not None else cfg.lr / 10,
                     cfg.warmup_steps, cfg.decay_steps or cfg.max_steps, cfg.schedule)

    def _shape_at(self, step: int, window: int) -> tuple[int, int]:
        """(rows, positions) of step ``step``'s micro-batch, of a whole one of --batch-size windows of
        ``window``: what --batch-ramp and --block-ramp (pretraining's windows) have grown them to."""
        cfg = self.cfg
        return (ramp_at(step, cfg.batch_size, cfg.batch_ramp_start, cfg.batch_ramp),
                ramp_at(step, window, cfg.block_ramp_start, cfg.block_ramp))

    def _ramped(self, batch: Batch) -> Batch:
        """The batch's first rows and positions under the ramps (under torchrun, this rank's share of
        the rows). The loader still draws whole batches, so a resumed run draws what the uninterrupted
        one did."""
        rows, width = self._shape_at(self.step, batch[0].shape[1])
        keep = max(1, rows * len(batch[0]) // self.cfg.batch_size)
        if width < batch[0].shape[1]:
            return tuple(t[:keep, :width] for t in batch)
        return tuple(t[:keep] for t in batch)

    def step_cost(self, step: int) -> float:
        """What step ``step`` costs as a share of a whole step (the progress bar's time left weighs
        steps by it). Only pretraining's windows ramp: the preset's context or --block-size."""
        cfg = self.cfg
        window = (cfg.block_size or self.model.config.block_size) if cfg.block_ramp else 1
        rows, width = self._shape_at(step, window)
        return rows / cfg.batch_size * width / window

    def train_step(self) -> dict:
        """One optimizer step over ``grad_accum`` micro-batches; returns what the log records, the
        loss (this rank's) and gradient norm as device tensors (reading them would wait for the GPU)."""
        cfg = self.cfg
        lr = self.learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)  # Muon's matrices: --muon-lr on --lr's schedule
        if self.distributed:  # dropout: different on each rank, the same on a rerun of the step
            torch.manual_seed(cfg.seed + self.step * distributed.world_size() + distributed.rank())
        total, tokens = torch.zeros((), device=self.device), 0
        if cfg.compile_mode == "reduce-overhead":  # a new step: the CUDA graphs' previous outputs may be reused
            torch.compiler.cudagraph_mark_step_begin()
        for i in range(cfg.grad_accum):
            batch = self._to_device(self._ramped(self.train_batches.next_batch()))
            tokens += batch[0].numel() * distributed.world_size()
            with distributed.gradient_sync(self.wrapped, sync=i == cfg.grad_accum - 1):
                with self._autocast():
                    loss = self.loss_fn(self.forward_model, batch) / cfg.grad_accum
                self.scaler.scale(loss).backward()
            total += loss.detach()
        self.scaler.unscale_(self.optimizer)
        grad_norm = distributed.full_tensor(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        progress = getattr(self.train_batches, "progress", None)
        return {"loss": total, "lr": lr, "grad_norm": grad_norm, "tokens": tokens, **(progress() if progress else {})}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Validation metrics, logged with the step. Fine-tuning overrides this (accuracy, F1, ...)."""
        if not self.val_batches:
            return {}
        self.model.eval()
        losses = []
        for batch in self.val_batches:
            share = distributed.my_share(batch) if self.distributed else batch
            with self._autocast():
                loss = self.loss_fn(self.forward_model, self._to_device(share)).float()
            losses.append(loss * (len(share[0]) / len(batch[0])))  # this rank's part of the batch's mean
        self.model.train()
        return {"val_loss": distributed.sum_over_ranks(torch.stack(losses).mean()).item()}

    # --- checkpoints --------------------------------------------------------------------------

    def _state_meta(self, optim_meta: dict) -> dict:
        return {"step": self.step, "optimizer": optim_meta, "loader": self.train_batches.state_dict(),
                "scaler": self.scaler.state_dict(), "train_config": json.loads(self.cfg.to_json())}

    def save(self) -> Path:
        self.unproven = True
        if self.distributed:
            return self._save_sharded()
        tensors, optim_meta = optimizer_to_tensors(self.optimizer)
        tensors["rng.cpu"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        return save_checkpoint(self.out, self.step, self.model, self.tokenizer, tensors, self._state_meta(optim_meta))

    def _save_sharded(self) -> Path:
        """Every rank writes its shards; rank 0 adds the whole model (config.json + model.safetensors,
        what generate/eval/export read) and the JSON state, then commits the directory atomically."""
        final, tmp = checkpoint_paths(self.out, self.step)
        if self.main:
            new_checkpoint_dir(self.out, self.step)
        distributed.barrier()
        param_groups = distributed.save_sharded(tmp / SHARDS, self.model, self.optimizer)
        self.write_model(tmp)
        if self.main:
            state = {**self._state_meta({"param_groups": param_groups}), "world_size": distributed.world_size()}
            write_text(tmp / SHARDED_STATE, json.dumps(state) + "\n")
            commit_checkpoint(self.out, self.step)
        distributed.barrier()  # nobody runs ahead of a checkpoint that is not yet committed
        return final

    def write_model(self, directory: Path) -> None:
        """The whole model as a model directory (what generate, eval, export and serve read), written
        by rank 0. FSDP's shards are gathered first, so under torchrun every rank must call this."""
        if not distributed.sharded(self.wrapped):  # one process, or DDP: rank 0 holds it whole
            if self.main:
                self.model.save_pretrained(directory, self.tokenizer)
            return
        weights = distributed.full_state(self.model)
        if self.main:
            with torch.device("meta"):
                whole = self.empty_model()
            whole.load_state_dict(weights, assign=True)
            whole.save_pretrained(directory, self.tokenizer)

    def empty_model(self) -> torch.nn.Module:
        """A model of the trained one's shape, to gather FSDP's shards into (made on the meta device)."""
        return GPT(self.model.config)

    def saved_weights(self, directory: Path) -> dict[str, torch.Tensor]:
        """A checkpoint's weights under the trained model's names (fine-tuning adds its head)."""
        weights = load_tensors(directory / WEIGHTS_NAME, device=self.device)
        check_state_dict(self.model, weights, directory / WEIGHTS_NAME)
        return weights

    def restore(self) -> None:
        """Continue the run in ``out`` exactly where its newest checkpoint left it, on any number of
        processes: a torchrun job's sharded checkpoint or a single process's."""
        directory = resume_checkpoint(self.out)
        # the groups' settings as the flags now say (saved, or given to this resume), not as saved
        settings = [{k: v for k, v in group.items() if k != "params"} for group in self.optimizer.param_groups]
        if (directory / SHARDS).is_dir():
            meta = read_json(directory / SHARDED_STATE, fix="the checkpoint is damaged; resume from an older one")
            self._check_optimizer(meta)
            distributed.load_sharded(directory / SHARDS, self.model, self.optimizer, meta["optimizer"]["param_groups"])
        elif self.distributed:  # a single process's checkpoint, continued by many
            directory, tensors, meta = load_training_state(self.out)
            self._check_optimizer(meta)
            distributed.load_whole(self.model, self.optimizer, self.saved_weights(directory),
                                   optimizer_state(tensors, meta["optimizer"]))
        else:
            directory, tensors, meta = load_training_state(self.out)
            self._check_optimizer(meta)
            self.model.load_state_dict(self.saved_weights(directory))
            optimizer_from_tensors(self.optimizer, tensors, meta["optimizer"])
            torch.set_rng_state(tensors["rng.cpu"].cpu())
            if "rng.cuda" in tensors and self.device.type == "cuda":
                torch.cuda.set_rng_state(tensors["rng.cuda"].cpu(), self.device)
        for group, setting in zip(self.optimizer.param_groups, settings):
            group.update(setting)
        self.train_batches.load_state_dict(meta["loader"])
        if meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])
        self.step = meta["step"]
        if self.main:  # forget what the interrupted run logged after this checkpoint: those steps are redone
            kept = [r for r in read_metrics(self.metrics_path) if r["step"] <= self.step]
            write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))
            self.time_before = kept[-1].get("time_s", 0.0) if kept else 0.0  # time_s goes on from there

    def _check_optimizer(self, meta: dict) -> None:
        """An optimizer's state goes on only in the same optimizer: say so, not torch's group count."""
        saved = meta.get("train_config", {}).get("optimizer", BEFORE_KNOB["optimizer"])
        if saved != self.cfg.optimizer:
            raise GptkitError(f"--resume: the run in {self.out} trained with --optimizer {saved}, whose state "
                              f"--optimizer {self.cfg.optimizer} cannot continue: resume without --optimizer, or start "
                              "afresh with --overwrite")

    # --- the loop -----------------------------------------------------------------------------

    def _settle(self, records: list[dict], seconds: float) -> None:
        """Read the device values of ``records`` in one sync: losses averaged over ranks (the gradient
        norm is the same on every rank), the rate, and the run's training seconds so far, across
        resumes (spread over the records evenly), for loss against wall-clock time."""
        values = torch.stack([torch.stack([r["loss"], r["grad_norm"]]) for r in records])
        values = distributed.sum_over_ranks(values) / distributed.world_size()
        rate = sum(r.pop("tokens") for r in records) / seconds
        now = self.time_before + time.perf_counter() - self.started
        for i, (record, (loss, grad_norm)) in enumerate(zip(records, values.tolist())):
            time_s = now - seconds * (len(records) - 1 - i) / len(records)
            record.update(loss=loss, grad_norm=grad_norm, tokens_per_sec=rate, time_s=round(time_s, 3))

    def _check_finite(self, records: list[dict]) -> None:
        """Stop a diverged run before it logs or saves anything of it. The checkpoint whose weights
        made the first non-finite loss is set aside, and ``latest`` goes back to the one before, which
        pruning kept: only a checkpoint whose next loss was finite lets older ones go. (With fp16's
        loss scaling an infinite gradient is expected: the scaler skips that step.)"""
        for r in records:
            values = {"loss": r["loss"], "validation loss": r.get("val_loss", 0.0)}
            if not self.scaler.is_enabled():
                values["gradient norm"] = r["grad_norm"]
            bad = {name: value for name, value in values.items() if not math.isfinite(value)}
            if bad:
                # the weights behind step s's training loss are step s-1's; behind its validation loss, step s's
                first_bad = r["step"] - 1 if "loss" in bad or "gradient norm" in bad else r["step"]
                good = set_aside_checkpoints(self.out, first_bad) if self.main else None
                distributed.barrier()
                lower = "a lower --lr" + (" or --muon-lr" if self.cfg.optimizer == "muon" else "")
                last = (f"its last good checkpoint, {good}, is kept: resume it with {lower} or more --warmup-steps"
                        if good else f"it had no good checkpoint to keep: start it again with {lower}")
                what = ", ".join(f"{name} {value}" for name, value in bad.items())
                raise Diverged(f"training diverged at step {r['step']} ({what}) and stopped; {last}")
        if self.unproven:  # the newest checkpoint has proven good: older ones may go
            if self.main:
                prune_checkpoints(self.out, self.cfg.keep_checkpoints)
            self.unproven = False

    def _log(self, records: list[dict]) -> None:
        if self.main:
            with open(self.metrics_path, "a") as f:
                f.writelines(json.dumps(r) + "\n" for r in records)

    def _start(self) -> None:
        """A fresh run or, with ``resume``, the interrupted one; rank 0 writes the config and log."""
        cfg = self.cfg
        enable_tf32(self.device)
        self.out.mkdir(parents=True, exist_ok=True)
        if cfg.resume:  # first: a resume that cannot go on leaves the run's saved settings as they were
            self.restore()
        if self.main:
            write_text(self.out / TRAIN_CONFIG, cfg.to_json())
        distributed.barrier()  # no rank trains before rank 0 has set up the run directory

    def fit(self) -> dict:
        self._start()
        try:
            return self._loop()
        except GptkitError as e:  # met by this rank alone (its windows, its GPU): it says so itself
            if not self.distributed or isinstance(e, (RankError, Diverged)):
                raise
            raise RankError(f"rank {distributed.rank()}: {e}") from None

    def _loop(self) -> dict:
        cfg = self.cfg
        self.model.train()
        # A bar closed on the way out, so an error after it stands on a line of its own.
        with tqdm(total=cfg.max_steps, initial=self.step, desc=self.desc, unit="step", bar_format=BAR_FORMAT,
                  disable=not (self.progress and self.main), dynamic_ncols=True) as bar:
            val_loss, shown = None, {"val": "-"}
            pending: list[dict] = []
            time_left, since = TimeLeft(self.step_cost(s) for s in range(self.step, cfg.max_steps)), []
            t0 = self.started = mark = time.perf_counter()
            while self.step < cfg.max_steps and not self.stop_requested:
                since.append(self.step_cost(self.step))
                stats = self.train_step()
                pending.append({"step": self.step, **stats})
                bar.update(1)
                last = self.step == cfg.max_steps
                evaluate = bool(cfg.eval_every and self.step % cfg.eval_every == 0) or last
                save = bool(cfg.save_every and self.step % cfg.save_every == 0) or last
                if not (evaluate or save or self.step % cfg.log_every == 0):
                    continue
                self._settle(pending, time.perf_counter() - t0)
                if evaluate:
                    metrics = self.evaluate()
                    pending[-1].update(metrics)
                    val_loss = metrics.get("val_loss", val_loss)
                    shown = _headline(metrics) or shown
                    save = save or self.stop_requested
                self._check_finite(pending)
                self._log(pending)
                now = time.perf_counter()
                time_left.done(since, now - mark)
                since, mark = [], now
                bar.set_postfix(loss=f"{pending[-1]['loss']:.3f}", **shown, tok_s=f"{pending[-1]['tokens_per_sec']:,.0f}",
                                left=tqdm.format_interval(time_left.seconds()))
                pending = []
                if save:
                    self.save()
                t0 = time.perf_counter()
        if self.main:  # the run is over: its newest checkpoint is the one to keep
            prune_checkpoints(self.out, self.cfg.keep_checkpoints)
        return {"step": self.step, "val_loss": val_loss, "metrics": str(self.metrics_path)}

    def plot(self, baseline: float | None = None) -> Path:
        data = self.cfg.data or "the bundled Shakespeare"
        title = f"{self.cfg.preset} on {data if isinstance(data, str) else ' + '.join(data)}"
        return plot_losses(self.metrics_path, self.out / "loss.png", baseline, title=title)


def _headline(metrics: dict[str, float]) -> dict[str, str]:
    """The progress bar's view of a validation: its first metric (the validation loss, or fine-tuning's
    accuracy or Pearson correlation), by name; empty when there was nothing to validate."""
    name, value = next(iter(metrics.items()), (None, None))
    return {"val" if name == "val_loss" else name: f"{value:.3f}"} if name else {}
