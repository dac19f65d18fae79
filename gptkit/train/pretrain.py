"""Pretraining with L1: assemble data, tokenizer and model from a TrainConfig and run the Trainer."""

from __future__ import annotations

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
    WindowLoader,
    prepare_shakespeare,
    unigram_entropy,
)
from gptkit.errors import GptkitError
from gptkit.model import GPT
from gptkit.tokenizer import Tokenizer
from gptkit.train.trainer import Trainer, training_session
from gptkit.train_config import TrainConfig


@dataclass
class PretrainResult:
    trainer: Trainer
    steps: int
    val_loss: float | None
    unigram_baseline: float | None
    loss_curve: Path


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
    if cfg.data:
        corpus = Corpus(cfg.data)  # one prepared directory or several; fails clearly if one is not prepared
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
    train = WindowLoader(corpus, "train", block, cfg.batch_size, seed=cfg.seed)
    has_val = corpus.has("val")
    val = WindowLoader(corpus, "val", block, cfg.batch_size).fixed_batches(cfg.eval_batches) if has_val else None
    trainer = Trainer(cfg, model, tokenizer, train, val, progress=progress)
    summary = trainer.fit()
    if not distributed.is_main():
        return PretrainResult(trainer, summary["step"], summary["val_loss"], None, trainer.out / "loss.png")
    baseline = unigram_entropy(corpus) if has_val else None
    curve = trainer.plot(baseline)
    return PretrainResult(trainer, summary["step"], summary["val_loss"], baseline, curve)
