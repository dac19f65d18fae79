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

from gptkit.config import GPTConfig
from gptkit.convert.hf import config_from_hf, load_hf_model, load_hf_tokenizer
from gptkit.convert.hub import resolve_pretrained
from gptkit.errors import GptkitError
from gptkit.io import fsync_dir, read_json, read_text, write_text
from gptkit.model import GPT
from gptkit.model.gpt import CONFIG_NAME, WEIGHTS_NAME
from gptkit.model.quantize import KINDS
from gptkit.model.quantize import quantize as quantize_model
from gptkit.run_dir import CHECKPOINTS, LATEST
from gptkit.tensor_io import load_tensors, read_metadata, save_tensors
from gptkit.tokenizer import Tokenizer
from gptkit.tokenizer.base import CONFIG_NAME as TOKENIZER_CONFIG

TRAIN_STATE = "training_state.safetensors"


def resolve_model_dir(path: str | Path) -> Path:
    """A model directory, the newest checkpoint of a training run directory, or a model name
    (gpt2, microsoft/DialoGPT-medium, ...) found in the local Hugging Face cache."""
    path = resolve_pretrained(path)
    if (path / CONFIG_NAME).is_file():
        return path
    latest = latest_checkpoint(path)
    if latest is not None:
        return latest
    if (path / TOKENIZER_CONFIG).is_file():
        raise GptkitError(f"{path} holds a tokenizer but no model (no {CONFIG_NAME}); give a model or run directory")
    raise GptkitError(f"no checkpoint in {path}: expected {CONFIG_NAME} + {WEIGHTS_NAME}, or a run directory with a "
                      f"'{LATEST}' file")


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint directory ``latest`` names, or None when the run has saved none."""
    latest = run_dir / LATEST
    if not latest.is_file():
        return None
    name = read_text(latest, fix="the run directory is damaged; delete the file to start the run again").strip()
    target = run_dir / CHECKPOINTS / name
    if "/" in name or not (target / CONFIG_NAME).is_file():
        raise GptkitError(f"{latest} points to {target}, which holds no checkpoint; the run directory is damaged")
    return target


def read_config(directory: Path) -> dict:
    """The config.json of a model directory: gptkit's own ("model_type": "gptkit") or Hugging Face's."""
    return read_json(directory / CONFIG_NAME, fix="the checkpoint is damaged; restore it or convert it again")


def is_hugging_face(config: dict) -> bool:
    return config.get("model_type") != "gptkit"


def load_config(path: str | Path) -> GPTConfig:
    """The GPTConfig of any checkpoint gptkit reads (its own or Hugging Face's), without its weights."""
    directory = resolve_model_dir(path)
    config = read_config(directory)
    return config_from_hf(config, directory) if is_hugging_face(config) else GPTConfig.load(directory / CONFIG_NAME)


def _load_model(directory: Path, device, dtype: torch.dtype | None) -> GPT:
    if is_hugging_face(read_config(directory)):
        return load_hf_model(directory, device, dtype)
    return GPT.from_directory(directory, device, dtype)


def _load_tokenizer(directory: Path, required: bool = True) -> Tokenizer | None:
    if (directory / TOKENIZER_CONFIG).is_file() or not (directory / CONFIG_NAME).is_file():
        return Tokenizer.load(directory)
    config = read_config(directory)
    if is_hugging_face(config) and (required or (directory / "vocab.json").is_file()):
        return load_hf_tokenizer(directory, config.get("model_type"))
    if not required:
        return None
    raise GptkitError(f"{directory} holds a model saved without its tokenizer ({TOKENIZER_CONFIG} is missing); "
                      "save it with model.save_pretrained(dir, tokenizer)")


def load_model(path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> GPT:
    """The GPT of a model directory, a run directory, a Hugging Face checkpoint or a cached model name,
    loaded straight onto ``device`` in ``dtype``: no random init, no second copy."""
    return _load_model(resolve_model_dir(path), device, dtype)


def load_tokenizer(path: str | Path) -> Tokenizer:
    """The tokenizer of a tokenizer directory, or of any model directory ``load_model`` reads."""
    path = resolve_pretrained(path)
    return _load_tokenizer(path if (path / TOKENIZER_CONFIG).is_file() else resolve_model_dir(path))


def load(path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
         quantize: str | None = None, require_tokenizer: bool = True) -> tuple[GPT, Tokenizer]:
    """Load (model, tokenizer) from a model directory, a training run directory, a Hugging Face
    checkpoint directory, or a model name in the local Hugging Face cache. ``quantize="int8"`` (or
    ``"int4"``) gives int8 (int4) linear layers for CPU inference (gptkit.model.quantize). With
    ``require_tokenizer=False`` a model saved without a tokenizer comes with None, not an error."""
    if quantize not in (None, *KINDS):
        raise GptkitError(f"quantize must be None, {', '.join(map(repr, KINDS))}; got {quantize!r}")
    directory = resolve_model_dir(path)
    model, tokenizer = _load_model(directory, device, dtype), _load_tokenizer(directory, require_tokenizer)
    if tokenizer is not None and tokenizer.vocab_size > model.config.vocab_size:
        raise GptkitError(
            f"{directory}: the tokenizer has {tokenizer.vocab_size} tokens but the model only "
            f"{model.config.vocab_size}; the tokenizer files belong to another model"
        )
    return (quantize_model(model, quantize) if quantize else model), tokenizer


def save_checkpoint(run_dir: str | Path, step: int, model, tokenizer, state_tensors: dict[str, torch.Tensor],
                    state_meta: dict) -> Path:
    """Write checkpoints/step-N atomically and point ``latest`` at it."""
    tmp = new_checkpoint_dir(run_dir, step)
    model.save_pretrained(tmp, tokenizer)
    save_tensors(tmp / TRAIN_STATE, state_tensors, metadata={"gptkit_state": json.dumps(state_meta)})
    return commit_checkpoint(run_dir, step)


def new_checkpoint_dir(run_dir: str | Path, step: int) -> Path:
    """The empty temporary directory step-N is written into before ``commit_checkpoint`` renames it."""
    tmp = checkpoint_paths(run_dir, step)[1]
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def commit_checkpoint(run_dir: str | Path, step: int) -> Path:
    """Make the written temporary directory step-N and point ``latest`` at it."""
    final, tmp = checkpoint_paths(run_dir, step)
    root = final.parent
    fsync_dir(tmp)
    shutil.rmtree(final, ignore_errors=True)  # left by a run killed before it moved ``latest``
    tmp.rename(final)
    fsync_dir(root)
    write_text(Path(run_dir) / LATEST, final.name + "\n")
    return final


def checkpoints(run_dir: str | Path) -> list[Path]:
    """A run's committed checkpoints, oldest first."""
    return sorted((Path(run_dir) / CHECKPOINTS).glob("step-*"))


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints. The trainer calls this only once the newest
    has proven good (the loss after it was finite), so the last good checkpoint is never lost."""
    for old in checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def set_aside_checkpoints(run_dir: str | Path, from_step: int) -> Path | None:
    """Rename the checkpoints of steps >= ``from_step`` (whose weights made a loss diverge) to
    diverged-step-N, point ``latest`` at the newest one left, and return it (None: none left)."""
    for bad in checkpoints(run_dir):
        if int(bad.name.split("-")[1]) >= from_step:
            bad.rename(bad.with_name(f"diverged-{bad.name}"))
    good = checkpoints(run_dir)
    if good:
        write_text(Path(run_dir) / LATEST, good[-1].name + "\n")
    else:
        (Path(run_dir) / LATEST).unlink(missing_ok=True)
    return good[-1] if good else None


def checkpoint_paths(run_dir: str | Path, step: int) -> tuple[Path, Path]:
    """(checkpoint directory, the temporary one it is written in) of step N."""
    final = Path(run_dir) / CHECKPOINTS / f"step-{step:07d}"
    return final, final.with_name(f".{final.name}.tmp")


def resume_checkpoint(run_dir: str | Path) -> Path:
    """The newest checkpoint of a run that --resume continues."""
    directory = latest_checkpoint(Path(run_dir))
    if directory is None:
        raise GptkitError(f"--resume: {run_dir} has no checkpoint yet (the run stopped before its first save); "
                          "start it again without --resume")
    return directory


def load_training_state(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[Path, dict, dict]:
    """(checkpoint directory, state tensors, state metadata) of the newest checkpoint of a run."""
    directory = resume_checkpoint(run_dir)
    path = directory / TRAIN_STATE
    tensors = load_tensors(path, device=device)
    meta = json.loads(read_metadata(path).get("gptkit_state", "{}"))
    return directory, tensors, meta
