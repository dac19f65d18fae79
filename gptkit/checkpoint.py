"""The one checkpoint format, and training runs that hold a series of them.

A model directory holds config.json, model.safetensors and the tokenizer files; a checkpoint saved
during training adds training_state.safetensors. A training run directory keeps its checkpoints in
checkpoints/step-NNNNNNN/ and names the newest complete one in the file ``latest``. Each checkpoint
is written under a temporary name, fsynced, then renamed, and only then does ``latest`` move to it
(itself replaced atomically), so a run killed at any moment keeps its previous good checkpoint.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from gptkit.errors import GptkitError
from gptkit.io import fsync_dir, load_tensors, read_metadata, save_tensors, write_text

LATEST = "latest"
CHECKPOINTS = "checkpoints"
TRAIN_STATE = "training_state.safetensors"


def resolve_model_dir(path: str | Path) -> Path:
    """A model directory, the newest checkpoint of a training run directory, or a model name
    (gpt2, microsoft/DialoGPT-medium, ...) found in the local Hugging Face cache."""
    from gptkit.convert.hub import resolve_pretrained

    path = resolve_pretrained(path)
    if (path / "config.json").is_file():
        return path
    latest = latest_checkpoint(path)
    if latest is not None:
        return latest
    raise GptkitError(f"no checkpoint in {path}: expected config.json + model.safetensors, or a run directory with a '{LATEST}' file")


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint directory ``latest`` names, or None when the run has saved none."""
    latest = run_dir / LATEST
    if not latest.is_file():
        return None
    target = run_dir / CHECKPOINTS / latest.read_text(encoding="utf-8").strip()
    if not (target / "config.json").is_file():
        raise GptkitError(f"{latest} points to {target}, which holds no checkpoint; the run directory is damaged")
    return target


def load_config(path: str | Path):
    """The GPTConfig of any checkpoint gptkit reads (its own or Hugging Face's), without its weights."""
    from gptkit.config import GPTConfig
    from gptkit.convert.hf import config_from_hf, is_hf_checkpoint

    directory = resolve_model_dir(path)
    if is_hf_checkpoint(directory):
        return config_from_hf(json.loads((directory / "config.json").read_text(encoding="utf-8")), directory)
    return GPTConfig.load(directory / "config.json")


def load(path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
    """Load (model, tokenizer) from a model directory, a training run directory, a Hugging Face
    checkpoint directory, or a model name in the local Hugging Face cache."""
    from gptkit.model import GPT
    from gptkit.tokenizer import Tokenizer

    directory = resolve_model_dir(path)
    model = GPT.from_pretrained(directory, device=device, dtype=dtype)
    tokenizer = Tokenizer.load(directory)
    if tokenizer.vocab_size > model.config.vocab_size:
        raise GptkitError(
            f"{directory}: the tokenizer has {tokenizer.vocab_size} tokens but the model only "
            f"{model.config.vocab_size}; the tokenizer files belong to another model"
        )
    return model, tokenizer


def save_checkpoint(run_dir: str | Path, step: int, model, tokenizer, state_tensors: dict[str, torch.Tensor],
                    state_meta: dict, keep: int = 2) -> Path:
    """Write checkpoints/step-N atomically, point ``latest`` at it, and keep the newest ``keep``."""
    root = Path(run_dir) / CHECKPOINTS
    final = root / f"step-{step:07d}"
    tmp = root / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, tokenizer)
    save_tensors(tmp / TRAIN_STATE, state_tensors, metadata={"gptkit_state": json.dumps(state_meta)})
    fsync_dir(tmp)
    shutil.rmtree(final, ignore_errors=True)  # left by a run killed before it moved ``latest``
    tmp.rename(final)
    fsync_dir(root)
    write_text(Path(run_dir) / LATEST, final.name + "\n")
    for old in sorted(root.glob("step-*"))[:-keep]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_training_state(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[Path, dict, dict]:
    """(checkpoint directory, state tensors, state metadata) of the newest checkpoint of a run."""
    run_dir = Path(run_dir)
    directory = latest_checkpoint(run_dir)
    if directory is None:
        raise GptkitError(f"--resume: {run_dir} holds no checkpoint to resume from (no '{LATEST}' file)")
    path = directory / TRAIN_STATE
    tensors = load_tensors(path, device=device)
    meta = json.loads(read_metadata(path).get("gptkit_state", "{}"))
    return directory, tensors, meta
