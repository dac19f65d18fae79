"""TrainConfig: every knob of a training run, loadable from YAML/TOML and overridden by flags."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from gptkit.errors import GptkitError


@dataclass
class TrainConfig:
    # what to train on, and where to write
    preset: str = "shakespeare-char"
    data: str | None = None  # a directory made by `gptkit prepare`; None: the bundled Shakespeare
    tokenizer: str = "char"  # for the bundled corpus: "char", "gpt2" or a tokenizer directory
    out: str = "runs/shakespeare"
    init_from: str | None = None  # start from these weights instead of a random init
    model: dict = field(default_factory=dict)  # overrides of the preset, e.g. {"n_layer": 2}
    # optimisation (AdamW, linear warmup then cosine decay to min_lr)
    max_steps: int = 1500
    batch_size: int = 32
    block_size: int | None = None  # None: the preset's context length
    grad_accum: int = 1
    lr: float = 2e-3
    min_lr: float | None = None  # None: lr / 10
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    dropout: float | None = None  # None: the preset's
    # machinery
    seed: int = 1337
    device: str = "auto"  # auto: cuda if available, else mps, else cpu
    dtype: str = "auto"  # auto: bf16 autocast on GPUs that have it, fp16 on others, fp32 on CPU
    compile: bool = False
    eval_every: int = 250
    eval_batches: int = 20
    save_every: int = 500
    keep_checkpoints: int = 2
    resume: bool = False
    sample_tokens: int = 400  # length of the sample printed at the end (0: none)

    def validate(self) -> None:
        positive = ("max_steps", "batch_size", "grad_accum", "eval_batches", "keep_checkpoints")
        for name in positive:
            if getattr(self, name) < 1:
                raise GptkitError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise GptkitError(f"--lr must be positive, got {self.lr}")
        if self.dtype not in ("auto", "fp32", "bf16", "fp16"):
            raise GptkitError(f"--dtype must be auto, fp32, bf16 or fp16; got {self.dtype!r}")

    @classmethod
    def from_file(cls, path: str | Path) -> dict:
        """The keys of a YAML or TOML config file, checked against TrainConfig's fields."""
        path = Path(path)
        if not path.is_file():
            raise GptkitError(f"config file {path} not found")
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
        except (tomllib.TOMLDecodeError, yaml.YAMLError) as e:
            raise GptkitError(f"config file {path} cannot be parsed: {str(e).splitlines()[0]}") from None
        data = data or {}
        if not isinstance(data, dict):
            raise GptkitError(f"config file {path} must hold a mapping of keys to values")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise GptkitError(f"config file {path}: unknown keys {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}")
        return data

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"
