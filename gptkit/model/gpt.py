"""The GPT model: one class for GPT-1, GPT-2, GPT-3 and DialoGPT; the differences are config switches.

Names mirror the papers and the original checkpoints (wte, wpe, h, ln_1, attn, ln_2, mlp, ln_f),
so converting published weights is a matter of renaming, not re-plumbing.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from gptkit.config import GPTConfig
from gptkit.errors import GptkitError
from gptkit.model.attention import CausalSelfAttention, attention_inputs
from gptkit.model.kv_cache import KVCache, Pages, RowCache
from gptkit.model.loss import linear_cross_entropy
from gptkit.tensor_io import load_tensors, save_tensors

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


class MLP(nn.Module):
    """Position-wise feed-forward network: n_embd -> 4 n_embd -> n_embd with GELU."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate="tanh")  # the GELU approximation GPT-1/2 used
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """One Transformer block; ``ln_order`` picks GPT-1's post-LN or GPT-2's pre-LN residual order."""

    def __init__(self, config: GPTConfig, layer_idx: int):
        super().__init__()
        self.pre_ln = config.ln_order == "pre"
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, mask, pages=None):
        if self.pre_ln:  # GPT-2: x + f(LN(x))
            x = x + self.attn(self.ln_1(x), mask, pages)
            return x + self.mlp(self.ln_2(x))
        x = self.ln_1(x + self.attn(x, mask, pages))  # GPT-1: LN(x + f(x))
        return self.ln_2(x + self.mlp(x))


def sinusoidal_embedding(positions: torch.Tensor, n_embd: int) -> torch.Tensor:
    """The original Transformer's fixed encoding: sin on even, cos on odd dimensions. (..., n_embd)."""
    i = torch.arange(0, n_embd, 2, device=positions.device, dtype=torch.float32)
    angles = positions[..., None].float() / (10000.0 ** (i / n_embd))
    pe = torch.zeros(*positions.shape, n_embd, device=positions.device)
    pe[..., 0::2] = torch.sin(angles)
    pe[..., 1::2] = torch.cos(angles[..., : n_embd // 2])
    return pe


def embedding(num: int, dim: int) -> nn.Embedding:
    """nn.Embedding, except on the meta device (shapes for loading), where its init is skipped: normal_
    on a meta tensor imports torch._dynamo, 2 s of every model load. Elsewhere it runs, so a seed
    still gives the weights it always gave (GPT.reset_parameters then draws them again)."""
    if torch.empty(0).is_meta:  # built under torch.device("meta")
        return nn.Embedding.from_pretrained(torch.empty(num, dim), freeze=False)
    return nn.Embedding(num, dim)


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.wte = embedding(config.vocab_size, config.n_embd)  # W_e, also the output layer
        if config.position == "learned":
            self.wpe = embedding(config.block_size, config.n_embd)  # W_p
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        if config.ln_order == "pre":
            self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.output: nn.Module | None = None  # W_e's own copy (int8 or oneDNN's layout), set by gptkit.model.quantize
        if self.wte.weight.device.type != "meta":  # shapes only (counting, loading): nothing to initialise
            self.reset_parameters()

    def reset_parameters(self) -> None:
        """N(0, 0.02) weights, zero biases; GPT-2 scales residual projections by 1/sqrt(2 n_layer)."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        if self.config.ln_order == "pre":
            for name, p in self.named_parameters():
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * self.config.n_layer))

    def forward(
        self,
        idx: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        kv_cache: Pages | None = None,
        return_hidden: bool = False,
        targets: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """idx (B, T) token ids -> logits (B, T, vocab_size), or final hidden states (B, T, n_embd),
        or with ``targets`` (B, T) the mean L1 over them (IGNORE_INDEX skipped), computed here, inside
        whatever compiles or wraps the model, without making the logits (linear_cross_entropy).

        attention_mask (B, T): 1 for real tokens, 0 for padding (left or right).
        kv_cache: where this chunk's keys go in a paged KV cache and which it attends to (KVCache.pages).
        """
        cfg = self.config
        inputs = attention_inputs(cfg, idx.shape[1], attention_mask, kv_cache, idx.device)
        x = self.drop(self.wte(idx) + self.position_embedding(inputs.positions))  # (B, T, n_embd)
        for i, block in enumerate(self.h):
            x = block(x, inputs.mask(cfg, i), kv_cache)
        if cfg.ln_order == "pre":
            x = self.ln_f(x)
        if targets is not None:
            return linear_cross_entropy(x, self.wte.weight, targets)
        return x if return_hidden else self.lm_head(x)

    def position_embedding(self, positions: torch.Tensor) -> torch.Tensor:
        """(B|1, T) positions -> (B|1, T, n_embd): learned (W_p) or the fixed sinusoids."""
        if self.config.position == "learned":
            return self.wpe(positions)
        return sinusoidal_embedding(positions, self.config.n_embd).to(self.wte.weight.dtype)

    def lm_head(self, hidden: torch.Tensor) -> torch.Tensor:
        """The output layer, tied to the token embedding: h_n W_e^T. (..., n_embd) -> (..., vocab_size).
        A quantized or oneDNN model keeps its own copy of W_e here (``output``); the lookup stays exact."""
        if self.output is not None:
            return self.output(hidden)
        return F.linear(hidden, self.wte.weight)

    def new_kv_cache(self, n_blocks: int, block_len: int = 16, dtype: torch.dtype | None = None,
                     rings: int = 0) -> KVCache:
        """A paged cache of ``n_blocks`` blocks of ``block_len`` positions, and ``rings`` rings for the
        banded layers' keys (GPT-3's alternating pattern), on the model's device."""
        cfg, p = self.config, self.wte.weight
        banded = [cfg.is_banded(i) for i in range(cfg.n_layer)]
        window = cfg.local_window if any(banded) else None
        return KVCache(banded, n_blocks, block_len, cfg.n_head, cfg.head_dim, p.device, dtype or p.dtype, window, rings)

    def row_cache(self, batch_size: int, max_len: int | None = None) -> RowCache:
        """A cache of ``batch_size`` rows of ``max_len`` positions (the context), each in blocks of its own."""
        max_len, block_len = max_len or self.config.block_size, 16
        return RowCache(self.new_kv_cache(batch_size * -(-max_len // block_len), block_len, rings=batch_size),
                        batch_size, max_len)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # --- the checkpoint format: config.json + model.safetensors --------------------------------

    def save_pretrained(self, directory: str | Path, tokenizer=None) -> None:
        """Write config.json and model.safetensors (and the tokenizer's files when given), atomically."""
        directory, state = Path(directory), self.state_dict()  # a model that cannot be saved says so first
        directory.mkdir(parents=True, exist_ok=True)
        save_tensors(directory / WEIGHTS_NAME, state)
        self.config.save(directory / CONFIG_NAME)
        if tokenizer is not None:
            tokenizer.save(directory)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu",
                        dtype: torch.dtype | None = None) -> GPT:
        """Load a model straight onto ``device`` in ``dtype`` (no random init, no second copy) from
        any layout gptkit reads: a directory ``save_pretrained`` wrote, a training run, a Hugging
        Face checkpoint, or a model name in the local Hugging Face cache (``gpt2``,
        ``microsoft/DialoGPT-medium``). The one loader is gptkit.checkpoint.load_model."""
        from gptkit.checkpoint import load_model  # it builds GPTs: imported here, not at the top

        return load_model(path, device, dtype)

    @classmethod
    def from_directory(cls, directory: Path, device: str | torch.device = "cpu",
                       dtype: torch.dtype | None = None) -> GPT:
        """The model of a directory ``save_pretrained`` wrote (gptkit's own layout)."""
        config = GPTConfig.load(directory / CONFIG_NAME)
        with torch.device("meta"):
            model = cls(config)
        state = load_tensors(directory / WEIGHTS_NAME, device=device, dtype=dtype)
        check_state_dict(model, state, directory / WEIGHTS_NAME)
        model.load_state_dict(state, assign=True)
        return model.eval()


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source) -> None:
    """Name every missing, unexpected or mis-shaped tensor, with both shapes."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems = [f"missing tensor {k} {list(s)}" for k, s in expected.items() if k not in state]
    problems += [f"unexpected tensor {k} {list(v.shape)}" for k, v in state.items() if k not in expected]
    problems += [
        f"tensor {k} has shape {list(v.shape)}, expected {list(expected[k])}"
        for k, v in state.items() if k in expected and tuple(v.shape) != expected[k]
    ]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise GptkitError(f"{source} does not match its config.json: {shown}")
    for name, tensor in state.items():  # flipped bits in a weight file often give inf or nan
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise GptkitError(f"{source} is corrupt: tensor {name} holds inf or nan; restore it or use an earlier checkpoint")


def count_parameters(config: GPTConfig) -> int:
    """Parameter count of a config, from the shapes above: instant and memory-free, even for 175B."""
    C, bias = config.n_embd, int(config.bias)
    layer_norm = C * (1 + bias)
    attention = (3 * C * C + 3 * C * bias) + (C * C + C * bias)  # c_attn, c_proj
    mlp = (4 * C * C + 4 * C * bias) + (4 * C * C + C * bias)  # c_fc, c_proj
    positions = config.block_size * C if config.position == "learned" else 0
    final_norm = layer_norm if config.ln_order == "pre" else 0
    return config.vocab_size * C + positions + config.n_layer * (2 * layer_norm + attention + mlp) + final_norm


def flops_per_token(config: GPTConfig, seq_len: int | None = None) -> float:
    """Training FLOPs per token (forward + backward): 6N plus attention, as in the PaLM appendix."""
    return 6 * count_parameters(config) + sum(attention_flops_per_token(config, seq_len).values())


def attention_flops_per_token(config: GPTConfig, seq_len: int | None = None) -> dict[str, float]:
    """Training FLOPs per token of the attention scores and their weighted sum, by layer kind: 12 x
    width x the keys a query sees (PaLM's 12 L H Q T), all T for a dense layer, the window for a
    banded one (GPT-3's alternating pattern)."""
    T = seq_len or config.block_size
    banded = sum(config.is_banded(i) for i in range(config.n_layer))
    flops = {"dense": 12 * (config.n_layer - banded) * config.n_embd * T}
    if banded:
        flops["banded"] = 12 * banded * config.n_embd * min(T, config.local_window)
    return flops


def kv_cache_bytes(config: GPTConfig, seq_len: int | None = None, bytes_per_value: int = 4) -> dict[str, int]:
    """Bytes the KV cache holds for one sequence of ``seq_len`` tokens, by layer kind: a dense layer
    keeps every position, a banded one a ring of its window (whole 16-position blocks)."""
    T = seq_len or config.block_size
    banded = sum(config.is_banded(i) for i in range(config.n_layer))
    per_position = 2 * config.n_embd * bytes_per_value  # a key and a value
    out = {"dense": (config.n_layer - banded) * -(-T // 16) * 16 * per_position}
    if banded:
        ring = (-(-(config.local_window - 1) // 16) + 1) * 16
        out["banded"] = banded * min(ring, -(-T // 16) * 16) * per_position
    return out
