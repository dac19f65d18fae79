"""GPTConfig and the registry of named presets: the papers' tables live here and nowhere else."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gptkit.errors import GptkitError
from gptkit.io import read_json, write_text


@dataclass
class GPTConfig:
    """Shape and architecture of a decoder-only Transformer.

    The GPT variants differ only in these switches:
    ``ln_order`` "post" is GPT-1 (LayerNorm after each residual add), "pre" is GPT-2/3
    (LayerNorm at each sub-block's input plus a final LayerNorm);
    ``attention`` "alternating" is GPT-3's pattern of dense and locally banded layers;
    ``position`` "sinusoidal" is the original Transformer's fixed encoding.
    """

    vocab_size: int = 50257
    block_size: int = 1024  # context length
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    ln_order: Literal["pre", "post"] = "pre"
    attention: Literal["dense", "alternating"] = "dense"
    local_window: int = 256  # band width of the banded layers (GPT-3's alternating pattern)
    position: Literal["learned", "sinusoidal"] = "learned"
    embd_pdrop: float = 0.0
    attn_pdrop: float = 0.0
    resid_pdrop: float = 0.0
    layer_norm_epsilon: float = 1e-5
    bias: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Every field has its type and range, checked before any arithmetic divides by one of them."""
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), FIELD_TYPES[f.name]
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                setattr(self, f.name, value)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise GptkitError(f"{f.name} must be {TYPE_WORDS[kind]}, got {value!r}")
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "local_window"):
            if getattr(self, name) < 1:
                raise GptkitError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("embd_pdrop", "attn_pdrop", "resid_pdrop"):
            if not 0 <= getattr(self, name) < 1:
                raise GptkitError(f"{name} is a dropout probability and must be in [0, 1), got {getattr(self, name)}")
        if not 0 < self.layer_norm_epsilon < 1:
            raise GptkitError(f"layer_norm_epsilon must be in (0, 1), got {self.layer_norm_epsilon}")
        choices = {"ln_order": ("pre", "post"), "attention": ("dense", "alternating"),
                   "position": ("learned", "sinusoidal")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise GptkitError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        if self.n_embd % self.n_head != 0:
            raise GptkitError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}); "
                f"pick an n_head that divides {self.n_embd}"
            )

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def is_banded(self, layer: int) -> bool:
        """GPT-3 alternates dense (even layers) and locally banded (odd layers) attention."""
        return self.attention == "alternating" and layer % 2 == 1

    def replace(self, **changes) -> GPTConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {"model_type": "gptkit", **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict, source: str = "the config") -> GPTConfig:
        """A config from its saved keys; the shape keys are required (no silent GPT-2 defaults)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields - {"model_type"}
        if unknown:
            raise GptkitError(f"{source}: unknown GPTConfig keys: {', '.join(sorted(unknown))}")
        missing = [k for k in REQUIRED if k not in d]
        if missing:
            raise GptkitError(f"{source} lacks {', '.join(missing)}; a gptkit config.json names every shape key")
        try:
            return cls(**{k: v for k, v in d.items() if k in fields})
        except GptkitError as e:
            raise GptkitError(f"{source}: {e}") from None

    def save(self, path: str | Path) -> None:
        write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> GPTConfig:
        return cls.from_dict(read_json(path, fix="the checkpoint is damaged; restore it"), str(path))

    @classmethod
    def preset(cls, name: str, **overrides) -> GPTConfig:
        if name not in PRESETS:
            raise GptkitError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
        return PRESETS[name].replace(**overrides)


FIELD_TYPES = {"vocab_size": int, "block_size": int, "n_layer": int, "n_head": int, "n_embd": int, "ln_order": str,
               "attention": str, "local_window": int, "position": str, "embd_pdrop": float, "attn_pdrop": float,
               "resid_pdrop": float, "layer_norm_epsilon": float, "bias": bool}
TYPE_WORDS = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}
REQUIRED = ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")


def _gpt2(n_layer: int, n_embd: int, n_head: int) -> GPTConfig:
    return GPTConfig(vocab_size=50257, block_size=1024, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                     embd_pdrop=0.1, attn_pdrop=0.1, resid_pdrop=0.1)


def _gpt3(n_layer: int, n_embd: int, n_head: int) -> GPTConfig:
    # GPT-3 paper, Table 2.1. The band width of the sparse layers is not given there.
    return GPTConfig(vocab_size=50257, block_size=2048, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                     attention="alternating", local_window=256)


PRESETS: dict[str, GPTConfig] = {
    # GPT-1 (Radford et al. 2018): 12 x 768, 12 heads, 512 positions, 40,478 BPE tokens, post-LN.
    "gpt1": GPTConfig(vocab_size=40478, block_size=512, n_layer=12, n_head=12, n_embd=768, ln_order="post",
                      embd_pdrop=0.1, attn_pdrop=0.1, resid_pdrop=0.1),
    # GPT-2 (Radford et al. 2019), Table 2.
    "gpt2": _gpt2(12, 768, 12),
    "gpt2-medium": _gpt2(24, 1024, 16),
    "gpt2-large": _gpt2(36, 1280, 20),
    "gpt2-xl": _gpt2(48, 1600, 25),
    # GPT-3 (Brown et al. 2020), Table 2.1. Two rows do not multiply out: XL lists 24 heads of 128
    # for d_model 2048 (we use 16 x 128), 13B lists d_model 5140 for 40 heads of 128 (we use 5120).
    "gpt3-small": _gpt3(12, 768, 12),
    "gpt3-medium": _gpt3(24, 1024, 16),
    "gpt3-large": _gpt3(24, 1536, 16),
    "gpt3-xl": _gpt3(24, 2048, 16),
    "gpt3-2.7b": _gpt3(32, 2560, 32),
    "gpt3-6.7b": _gpt3(32, 4096, 32),
    "gpt3-13b": _gpt3(40, 5120, 40),
    "gpt3-175b": _gpt3(96, 12288, 96),
    # DialoGPT (Zhang et al. 2020) reuses the GPT-2 shapes.
    "dialogpt-small": _gpt2(12, 768, 12),
    "dialogpt-medium": _gpt2(24, 1024, 16),
    "dialogpt-large": _gpt2(36, 1280, 20),
    # Small models that train in minutes on a laptop CPU (vocab_size is set from the tokenizer).
    "tiny": GPTConfig(vocab_size=256, block_size=64, n_layer=2, n_head=2, n_embd=32),
    "shakespeare-char": GPTConfig(vocab_size=96, block_size=128, n_layer=4, n_head=4, n_embd=128,
                                  embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0),
    "small": GPTConfig(vocab_size=50257, block_size=256, n_layer=6, n_head=6, n_embd=384,
                       embd_pdrop=0.1, attn_pdrop=0.1, resid_pdrop=0.1),
    # GPT-3's alternating dense and banded attention at long contexts, small enough to train on a CPU.
    "banded-4k": GPTConfig(vocab_size=96, block_size=4096, n_layer=4, n_head=4, n_embd=128,
                              attention="alternating", local_window=256, embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0),
    "banded-8k": GPTConfig(vocab_size=96, block_size=8192, n_layer=4, n_head=4, n_embd=128,
                              attention="alternating", local_window=256, embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0),
}
