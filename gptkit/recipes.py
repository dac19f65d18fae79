"""The papers' training recipes by name (`--recipe`): the optimizer, schedule, batch and context that
GPT-1, GPT-2, GPT-3 and DialoGPT report, with the section or table each number is from (see
docs/pretraining.md#the-papers-recipes). The model shapes are the presets (gptkit.config); these are
how the papers trained them.

What a paper counts in tokens or epochs stays so here and becomes optimizer steps of the batch a run
actually uses (``Recipe.steps``): GPT-3's warmup over 375M tokens is 750 steps of its 0.5M-token
batch and 3,000 of a 125K-token one. Kept free of PyTorch: the command line reads it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from gptkit.errors import GptkitError


@dataclass(frozen=True)
class Recipe:
    """How a paper trained: every training hyperparameter, so no default of gptkit's (chosen for a
    fast demo) decides what a recipe means. Lengths are in the paper's own unit: ``warmup_steps`` or
    ``warmup_tokens``; the run as ``run_tokens`` or ``epochs`` of the training data, or neither where
    the paper gives no length (``length_note`` says what it does say)."""

    source: str  # the paper, and where in it
    command: str  # the gptkit command that trains this way
    preset: str
    block_size: int  # the context of the training windows
    batch_tokens: int  # tokens per optimizer step: sequences = batch_tokens / block_size
    lr: float  # the peak, reached at the warmup's end
    min_lr_ratio: float  # where the decay ends, as a fraction of lr
    weight_decay: float  # decoupled, on weight matrices and embeddings only (not biases or gains)
    beta1: float
    beta2: float
    grad_clip: float
    dropout: float  # residual, embedding and attention
    schedule: str = "cosine"
    warmup_steps: int = 0
    warmup_tokens: int = 0
    decay_tokens: int = 0  # the cosine's length where shorter than the run (then lr stays at its end)
    run_tokens: int = 0
    epochs: int = 0
    eps: float = 1e-8  # Adam's epsilon: torch's default, which gptkit's optimizer uses
    length_note: str = ""
    notes: tuple[str, ...] = field(default=())  # values the paper does not give, and where they come from

    def sequences(self, block_size: int, grad_accum: int = 1) -> int:
        """Sequences per micro-batch that make the paper's batch in tokens at this context."""
        return max(1, round(self.batch_tokens / (block_size * grad_accum)))

    def steps(self, tokens_per_step: int, train_tokens: int | None = None) -> dict[str, int | None]:
        """warmup_steps, decay_steps (None: the whole run) and max_steps (None: the paper gives no
        length, or it is in epochs and ``train_tokens`` is unknown) at ``tokens_per_step``."""
        warmup = self.warmup_steps or round(self.warmup_tokens / tokens_per_step)
        decay = round(self.decay_tokens / tokens_per_step) if self.decay_tokens else None
        run = self.run_tokens or (self.epochs * train_tokens if self.epochs and train_tokens else 0)
        return {"warmup_steps": warmup, "decay_steps": decay,
                "max_steps": max(1, round(run / tokens_per_step)) if run else None}

    def length(self) -> str:
        """The run's length in the paper's words."""
        if self.run_tokens:
            return f"{self.run_tokens / 1e9:,.0f}B tokens"
        if self.epochs:
            return f"{self.epochs} epochs of the training data"
        return self.length_note


GPT1 = "GPT-1 (Radford et al. 2018), section 4.1, Model specifications"
GPT2 = "GPT-2 (Radford et al. 2019), section 2.3; the rest as GPT-1, section 4.1"
GPT3 = "GPT-3 (Brown et al. 2020), Table 2.1 and Appendix B; context: section 2.1; 300B tokens: section 2.2"
DIALOGPT = "DialoGPT (Zhang et al. 2020), section 4.1, and its released trainer (LSP_train.py, demo.py)"


def _gpt3(preset: str, lr: float, batch_tokens: float) -> Recipe:
    # Appendix B: Adam (0.9, 0.95, 1e-8), clip 1.0, weight decay 0.1, warmup over 375M tokens, cosine
    # decay to 10% over 260B tokens, then 10%; 300B tokens in all (section 2.2, Table D.1).
    return Recipe(source=GPT3, command="pretrain", preset=preset, block_size=2048, batch_tokens=round(batch_tokens),
                  lr=lr, min_lr_ratio=0.1, weight_decay=0.1, beta1=0.9, beta2=0.95, grad_clip=1.0, dropout=0.0,
                  warmup_tokens=375_000_000, decay_tokens=260_000_000_000, run_tokens=300_000_000_000,
                  notes=("dropout: the paper names none; gptkit's GPT-3 presets have none",
                         "the batch grows from 32K tokens to the full batch over the first 4-12B tokens in the "
                         "paper (Appendix B); gptkit trains at the full batch from the start"))


RECIPES: dict[str, Recipe] = {
    # Adam at 2.5e-4, linear warmup over 2,000 updates, cosine annealing to 0, 100 epochs of 64 x 512,
    # dropout 0.1, w = 0.01 on all non-bias, non-gain weights.
    "gpt1": Recipe(source=GPT1, command="pretrain", preset="gpt1", block_size=512, batch_tokens=64 * 512, lr=2.5e-4,
                   min_lr_ratio=0.0, weight_decay=0.01, beta1=0.9, beta2=0.999, grad_clip=1.0, dropout=0.1,
                   warmup_steps=2000, epochs=100,
                   notes=("Adam's betas and clipping: the paper says only Adam; these are Adam's defaults and the "
                          "released GPT-1 code's (max_grad_norm 1)",)),
    # Context 1,024 and batch 512; the learning rate was tuned per model and is not published.
    "gpt2": Recipe(source=GPT2, command="pretrain", preset="gpt2", block_size=1024, batch_tokens=512 * 1024, lr=2.5e-4,
                   min_lr_ratio=0.0, weight_decay=0.01, beta1=0.9, beta2=0.999, grad_clip=1.0, dropout=0.1,
                   warmup_steps=2000,
                   length_note="the paper gives none",
                   notes=("learning rate: tuned per model on held-out WebText and not published (section 3); "
                          "GPT-1's 2.5e-4 here",
                          "warmup, cosine to 0, weight decay, dropout: GPT-1's, which GPT-2 'largely follows'")),
    # Table 2.1: learning rate and batch (tokens) per size.
    "gpt3-125M": _gpt3("gpt3-small", 6.0e-4, 0.5e6),
    "gpt3-350M": _gpt3("gpt3-medium", 3.0e-4, 0.5e6),
    "gpt3-760M": _gpt3("gpt3-large", 2.5e-4, 0.5e6),
    "gpt3-1.3B": _gpt3("gpt3-xl", 2.0e-4, 1e6),
    "gpt3-2.7B": _gpt3("gpt3-2.7b", 1.6e-4, 1e6),
    "gpt3-6.7B": _gpt3("gpt3-6.7b", 1.2e-4, 2e6),
    "gpt3-13B": _gpt3("gpt3-13b", 1.0e-4, 2e6),
    "gpt3-175B": _gpt3("gpt3-175b", 0.6e-4, 3.2e6),
    # Section 4.1: the Noam schedule with 16,000 warmup steps; trained until the validation loss stops
    # improving, at most 5 epochs (3 for the large model); the learning rate was chosen on validation loss.
    "dialogpt": Recipe(source=DIALOGPT, command="dialogue train", preset="dialogpt-medium", block_size=128,
                       batch_tokens=512 * 128, lr=1e-5 * 1e4 / math.sqrt(1024 * 16_000), min_lr_ratio=0.0,
                       weight_decay=0.01, beta1=0.9, beta2=0.999, grad_clip=1.0, dropout=0.1, schedule="noam",
                       warmup_steps=16_000,
                       length_note="until the validation loss stops improving: at most 5 epochs, 3 for the large model",
                       notes=("learning rate: the paper's was chosen on validation loss; this is the released "
                              "trainer's peak, 1e-5 x 1e4 / sqrt(n_embd 1024 x 16,000 warmup steps)",
                              "context and batch: the released trainer's 128 tokens (--max_seq_length) and 512 "
                              "sequences a step (--train_batch_size)",
                              "weight decay 0.01 (not on biases and LayerNorms), clipping 1.0: the released trainer's")),
}


def find_recipe(name: str) -> tuple[str, Recipe]:
    """(its name as listed, the recipe); the case of the size does not matter (gpt3-125m)."""
    by_lower = {key.lower(): key for key in RECIPES}
    key = by_lower.get(str(name).lower())
    if key is None:
        raise GptkitError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}")
    return key, RECIPES[key]


def recipe_keys(name: str, command: str, given: dict, train_tokens: Callable[[], int | None] | None = None) -> dict:
    """The training config keys recipe ``name`` sets that ``given`` (flags, config file, a resumed
    run's settings) does not, its lengths in steps of the batch the run will use. ``train_tokens()``
    counts the training data, asked only for a run counted in epochs."""
    key, recipe = find_recipe(name)
    if recipe.command != command:
        raise GptkitError(f"--recipe {key} is how `gptkit {recipe.command}` trains, not `gptkit {command}`")
    given = {k: v for k, v in given.items() if v is not None}
    keys = {"preset": recipe.preset, "block_size": recipe.block_size, "grad_accum": 1, "lr": recipe.lr,
            "weight_decay": recipe.weight_decay, "beta1": recipe.beta1, "beta2": recipe.beta2,
            "grad_clip": recipe.grad_clip, "dropout": recipe.dropout, "schedule": recipe.schedule, "batch_ramp": 0,
            "block_ramp": 0, "optimizer": "adamw"}
    run = {**keys, **given}
    # Follow the run's own lr and context: GPT-3 decays to 10% of the lr used, and its batch is in tokens.
    keys["min_lr"] = round(recipe.min_lr_ratio * run["lr"], 15)
    keys["batch_size"] = recipe.sequences(run["block_size"], run["grad_accum"])
    run = {**keys, **given}
    counted = train_tokens() if recipe.epochs and "max_steps" not in given and train_tokens else None
    keys.update(recipe.steps(run["batch_size"] * run["grad_accum"] * run["block_size"], counted))
    if "max_steps" not in given and keys["max_steps"] is None:
        why = (f"runs {recipe.epochs} epochs of --data: give --data, or" if recipe.epochs
               else f"has no fixed length ({recipe.length()}): give")
        raise GptkitError(f"--recipe {key} {why} --max-steps")
    return {k: v for k, v in keys.items() if k not in given}
