"""Pretraining with L1: assemble data, tokenizer and model from a TrainConfig and run the Trainer."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch

import gptkit.train.distributed as distributed
from gptkit import run_dir
from gptkit.checkpoint import load_model
from gptkit.config import GPTConfig
from gptkit.data import (
    Corpus,
    MixtureLoader,
    WindowLoader,
    prepare_shakespeare,
    unigram_entropy,
)
from gptkit.errors import GptkitError
from gptkit.model import GPT
from gptkit.tokenizer import Tokenizer
from gptkit.train.trainer import Trainer, training_session
from gptkit.train_config import TrainConfig

log = logging.getLogger("gptkit")


@dataclass
class PretrainResult:
    trainer: Trainer
    steps: int
    val_loss: float | None
    unigram_baseline: float | None
    loss_curve: Path
    epochs: dict[str, float] | None = None  # a weighted mixture: the passes over each corpus


def build_model(cfg: TrainConfig, tokenizer: Tokenizer, device: torch.device) -> GPT:
    if cfg.init_from:
        model = load_model(cfg.init_from, device=device, dtype=torch.float32)
        if tokenizer.vocab_size > model.config.vocab_size:
            raise GptkitError(f"--init-from {cfg.init_from} has {model.config.vocab_size} tokens, the data's "
                              f"tokenizer {tokenizer.vocab_size}: prepare the data with the model's tokenizer")
        return model.train()
    overrides = dict(cfg.model)
    overrides["vocab_size"] = tokenizer.vocab_size
    if cfg.dropout is not None:
        overrides.update(embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout, resid_pdrop=cfg.dropout)
    return GPT(GPTConfig.preset(cfg.preset, **overrides)).to(device)


def training_window(cfg: TrainConfig, model: GPT) -> int:
    """The length of the training windows: --block-size, at most the model's context (its positions)."""
    context = model.config.block_size
    if cfg.block_size and cfg.block_size > context:
        source = f"--init-from {cfg.init_from}" if cfg.init_from else f"the {cfg.preset} preset"
        raise GptkitError(f"--block-size {cfg.block_size} is longer than the context of {context} tokens of {source}; "
                          f"pick a preset with a longer context or give the model one in --config (model: {{block_size: N}})")
    return cfg.block_size or context


def pretrain(cfg: TrainConfig, progress: bool = True) -> PretrainResult:
    """Train; under torchrun, as one process of the job (see gptkit.train.distributed)."""
    cfg.validate()
    with training_session(cfg) as device:
        return _pretrain(cfg, device, progress)


def _pretrain(cfg: TrainConfig, device: torch.device, progress: bool) -> PretrainResult:
    torch.manual_seed(cfg.seed)
    dirs, weights = cfg.corpora()
    if dirs:
        corpus = Corpus(dirs)  # one prepared directory or several; fails clearly if one is not prepared
    else:
        # One cache per tokenizer: shards made with another vocabulary must never be reused.
        data_dir = Path(cfg.out) / run_dir.CACHE / re.sub(r"[^\w.-]", "_", cfg.tokenizer)
        if distributed.is_main():  # made once, by rank 0, while the other ranks wait
            prepare_shakespeare(data_dir, cfg.tokenizer, progress)
        distributed.barrier()
        corpus = Corpus(data_dir)
    tokenizer = corpus.tokenizer
    model = build_model(cfg, tokenizer, device)
    block = training_window(cfg, model)
    if weights:
        train, val = mixture_loaders(cfg, dirs, weights, block)
    else:
        train = WindowLoader(corpus, "train", block, cfg.batch_size, seed=cfg.seed)
        has_val = corpus.has("val")
        val = WindowLoader(corpus, "val", block, cfg.batch_size).fixed_batches(cfg.eval_batches) if has_val else None
    trainer = Trainer(cfg, model, tokenizer, train, val, progress=progress)
    summary = trainer.fit()
    epochs = train.epochs() if weights else None
    if distributed.is_main() and epochs:
        log.info("epochs each corpus received: %s", _epochs_text(epochs))
    if not distributed.is_main():
        return PretrainResult(trainer, summary["step"], summary["val_loss"], None, trainer.out / "loss.png", epochs)
    baseline = unigram_entropy(corpus, weights=weights) if corpus.has("val") else None
    curve = trainer.plot(baseline)
    return PretrainResult(trainer, summary["step"], summary["val_loss"], baseline, curve, epochs)


def mixture_loaders(cfg: TrainConfig, dirs: list[str], weights: list[float], block: int,
                    ) -> tuple[MixtureLoader, list | None]:
    """Training batches drawn by weight, and validation batches in the same proportions from the
    corpora that hold a validation split. Logs the plan: the epochs each corpus will receive."""
    train = MixtureLoader(dirs, weights, "train", block, cfg.batch_size, seed=cfg.seed)
    run_tokens = cfg.max_steps * cfg.grad_accum * cfg.batch_size * block
    planned = {d: run_tokens * w / n for d, w, n in zip(dirs, train.weights, train.tokens)}
    if distributed.is_main():
        log.info("mixture of %d corpora, by weight; epochs each will receive in %s steps: %s",
                 len(dirs), f"{cfg.max_steps:,}", _epochs_text(planned))
    held_out = [(d, w) for d, w in zip(dirs, weights) if Corpus(d).has("val")]
    if not held_out:
        return train, None
    val = MixtureLoader([d for d, _ in held_out], [w for _, w in held_out], "val", block, cfg.batch_size)
    return train, val.fixed_batches(cfg.eval_batches)


def _epochs_text(epochs: dict[str, float]) -> str:
    return ", ".join(f"{name} {e:.3g}" for name, e in epochs.items())
