"""Pretraining with L1: assemble data, tokenizer and model from a TrainConfig and run the Trainer."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from gptkit.config import GPTConfig
from gptkit.data import (
    WindowLoader,
    prepare,
    read_meta,
    shakespeare_splits,
    unigram_entropy,
)
from gptkit.errors import GptkitError
from gptkit.model import GPT
from gptkit.tokenizer import Tokenizer
from gptkit.train.config import TrainConfig
from gptkit.train.trainer import Trainer, resolve_device


@dataclass
class PretrainResult:
    trainer: Trainer
    steps: int
    val_loss: float | None
    unigram_baseline: float | None
    loss_curve: Path


def make_tokenizer(spec: str, texts: list[str]) -> Tokenizer:
    """"char" (a vocabulary of the corpus's characters), "gpt2", or a directory holding a tokenizer."""
    if spec == "char":
        return Tokenizer.char("".join(texts))
    if spec == "gpt2":
        return Tokenizer.gpt2()
    if Path(spec).is_dir():
        return Tokenizer.load(spec)
    raise GptkitError(f"unknown tokenizer {spec!r}: use char, gpt2 or a directory with tokenizer files")


def prepare_bundled_shakespeare(data_dir: Path, tokenizer_spec: str, progress: bool = True) -> Path:
    """Shards of the bundled Shakespeare (three plays held out for validation), made once."""
    if (data_dir / "meta.json").is_file():
        return data_dir
    splits = shakespeare_splits()
    tokenizer = make_tokenizer(tokenizer_spec, [d.text for docs in splits.values() for d in docs])
    docs = [(split, doc) for split, split_docs in splits.items() for doc in split_docs]
    prepare(docs, tokenizer, data_dir, total_bytes=sum(len(d.text) for _, d in docs), progress=progress)
    return data_dir


def build_model(cfg: TrainConfig, tokenizer: Tokenizer, device: torch.device) -> GPT:
    if cfg.init_from:
        model = GPT.from_pretrained(cfg.init_from, device=device, dtype=torch.float32)
        if tokenizer.vocab_size > model.config.vocab_size:
            raise GptkitError(f"--init-from {cfg.init_from} has {model.config.vocab_size} tokens, the data's "
                              f"tokenizer {tokenizer.vocab_size}: prepare the data with the model's tokenizer")
        return model.train()
    overrides = dict(cfg.model)
    overrides["vocab_size"] = tokenizer.vocab_size
    if cfg.block_size:
        overrides["block_size"] = cfg.block_size
    if cfg.dropout is not None:
        overrides.update(embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout, resid_pdrop=cfg.dropout)
    return GPT(GPTConfig.preset(cfg.preset, **overrides)).to(device)


def pretrain(cfg: TrainConfig, progress: bool = True) -> PretrainResult:
    cfg.validate()
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    if cfg.data:
        data_dir = Path(cfg.data)
        read_meta(data_dir)  # fails clearly if this is not a prepared directory
    else:
        # One cache per tokenizer: shards made with another vocabulary must never be reused.
        data_dir = prepare_bundled_shakespeare(Path(cfg.out) / "data" / re.sub(r"[^\w.-]", "_", cfg.tokenizer),
                                               cfg.tokenizer, progress)
    tokenizer = Tokenizer.load(data_dir)
    model = build_model(cfg, tokenizer, device)
    block = min(cfg.block_size or model.config.block_size, model.config.block_size)
    train = WindowLoader(data_dir, "train", block, cfg.batch_size, seed=cfg.seed)
    has_val = bool(read_meta(data_dir)["splits"].get("val", {}).get("shards"))
    val = WindowLoader(data_dir, "val", block, cfg.batch_size).fixed_batches(cfg.eval_batches) if has_val else None
    trainer = Trainer(cfg, model, tokenizer, train, val, progress=progress)
    summary = trainer.fit()
    baseline = unigram_entropy(data_dir) if has_val else None
    curve = trainer.plot(baseline)
    return PretrainResult(trainer, summary["step"], summary["val_loss"], baseline, curve)
