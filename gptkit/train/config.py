"""TrainConfig: every knob of a training run, loadable from YAML/TOML and overridden by flags."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from gptkit.config import FIELD_TYPES
from gptkit.device import PRECISIONS
from gptkit.errors import GptkitError
from gptkit.io import read_json, read_text
from gptkit.run_dir import TRAIN_CONFIG

PARALLEL = ("ddp", "fsdp")  # how a torchrun job splits the work: replicas (DDP) or shards (FSDP2)
# torch.compile's modes; reduce-overhead replays the step as CUDA graphs (small models are launch-bound)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


# (field, lowest value, type) of every numeric knob; OPTIONAL ones may be None (a default decides).
LIMITS = (("max_steps", 1, int), ("batch_size", 1, int), ("block_size", 1, int), ("grad_accum", 1, int),
          ("lr", 0, float), ("min_lr", 0, float), ("warmup_steps", 0, int), ("weight_decay", 0, float),
          ("beta1", 0, float), ("beta2", 0, float), ("grad_clip", 0, float), ("dropout", 0, float),
          ("seed", 0, int), ("eval_every", 0, int), ("eval_batches", 1, int), ("save_every", 0, int),
          ("keep_checkpoints", 1, int), ("sample_tokens", 0, int), ("log_every", 1, int))
SEED_MAX = 2**63 - 1  # torch's generators take 64 bits; the ranks' seeds add to it
OPTIONAL = {"block_size", "min_lr", "dropout", "max_steps", "warmup_steps", "eval_every"}


@dataclass
class TrainConfig:
    # what to train on, and where to write
    preset: str = "shakespeare-char"
    data: str | list[str] | None = None  # `gptkit prepare` directory, or several read as one corpus; None: bundled Shakespeare
    tokenizer: str = "char"  # for the bundled corpus: "char", "gpt2" or a tokenizer directory
    out: str = "runs/shakespeare"
    init_from: str | None = None  # start from these weights instead of a random init
    model: dict = field(default_factory=dict)  # overrides of the preset, e.g. {"n_layer": 2}
    # optimisation (AdamW, linear warmup then cosine decay to min_lr)
    max_steps: int = 1500
    batch_size: int = 32  # windows per micro-batch of the whole job; under torchrun each process takes 1/world
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
    compile_mode: str = "default"  # one of COMPILE_MODES, with compile
    fused_loss: bool = True  # L1 a chunk of rows at a time in the forward, never the whole (B, T, vocab) logits
    eval_every: int = 250
    log_every: int = 10  # steps between reads of the loss from the device (every step is still logged)
    eval_batches: int = 20
    save_every: int = 500
    keep_checkpoints: int = 2
    resume: bool = False
    overwrite: bool = False  # a fresh run where one exists: move the old one aside (never deleted)
    parallel: str = "ddp"  # under torchrun: "ddp" (a replica per process) or "fsdp" (FSDP2 shards)
    sample_tokens: int = 400  # length of the sample printed at the end (0: none)

    def validate(self) -> None:
        """Every number in range before anything runs: a bad flag is one line, never a hang or a nan."""
        for name, low, kind in LIMITS:
            value = getattr(self, name)
            if value is None and name in OPTIONAL:
                continue
            allowed = (int, float) if kind is float else int
            if not isinstance(value, allowed) or isinstance(value, bool) or not math.isfinite(value) or value < low:
                need = "a whole number" if kind is int else "a number"
                raise GptkitError(f"--{name.replace('_', '-')} must be {need} >= {low:g}, got {value!r}")
        if self.resume and self.overwrite:
            raise GptkitError("--resume continues the run in --out and --overwrite moves it aside: give one of them")
        if self.seed > SEED_MAX:
            raise GptkitError(f"--seed must be at most {SEED_MAX} (2**63 - 1), got {self.seed}")
        if self.lr <= 0:
            raise GptkitError(f"--lr must be positive, got {self.lr}")
        for name in ("beta1", "beta2", "dropout"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                raise GptkitError(f"--{name} must be in [0, 1), got {value}")
        if self.compile_mode not in COMPILE_MODES:
            raise GptkitError(f"--compile-mode must be one of {', '.join(COMPILE_MODES)}; got {self.compile_mode!r}")
        if self.compile_mode != "default" and not self.compile:
            raise GptkitError(f"--compile-mode {self.compile_mode} is a mode of torch.compile: add --compile")
        if self.parallel not in PARALLEL:
            raise GptkitError(f"--parallel must be one of {', '.join(PARALLEL)}; got {self.parallel!r}")
        if self.dtype not in PRECISIONS:
            raise GptkitError(f"--dtype must be one of {', '.join(PRECISIONS)}; got {self.dtype!r}")
        if not isinstance(self.model, dict):
            raise GptkitError(f"model must be a mapping of preset overrides such as {{n_layer: 2}}, got {self.model!r}")
        unknown = sorted(set(self.model) - set(FIELD_TYPES))
        if unknown:
            raise GptkitError(f"model: unknown keys {', '.join(map(str, unknown))}; valid keys: {', '.join(FIELD_TYPES)}")

    @classmethod
    def from_file(cls, path: str | Path) -> dict:
        """The keys of a YAML or TOML config file, checked against TrainConfig's fields."""
        path = Path(path)
        if not path.is_file():
            raise GptkitError(f"config file {path} not found")
        text = read_text(path, fix="save the config file as UTF-8")
        try:
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

    @classmethod
    def resolve(cls, flags: dict, config_file: str | Path | None = None) -> TrainConfig:
        """What a command runs: the saved config of the run in ``out`` (with ``resume``), then the
        config file's keys, then the flags that were given (None means not given)."""
        keys: dict = {}
        out = flags.get("out") or getattr(cls, "out", None)
        if flags.get("resume"):
            saved = Path(out) / TRAIN_CONFIG
            if not saved.is_file():
                raise GptkitError(f"--resume: {out} holds no run to resume ({TRAIN_CONFIG} is missing); start it without --resume")
            saved_keys = read_json(saved, fix="start the run again without --resume")
            keys.update({k: v for k, v in saved_keys.items() if k not in ("resume", "overwrite")})
        if config_file:
            keys.update(cls.from_file(config_file))
        keys.update({k: v for k, v in flags.items() if v is not None})
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in keys.items() if k in names})

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"
