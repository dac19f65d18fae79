"""Dialogue training (forward, or backward for MMI): dialogues -> filtered pairs -> padded examples
-> the shared Trainer with the masked language-model loss."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gptkit.chat.data import Dialogue, read_dialogues
from gptkit.chat.examples import DIALOGUE_TEMPLATE, ExampleConfig, build_examples, dialogue_batches
from gptkit.chat.filters import FilterConfig, FilterReport, filter_config, filter_sessions
from gptkit.checkpoint import load_tokenizer
from gptkit.data.vocab import tokenizer_from_spec
from gptkit.errors import GptkitError
from gptkit.tokenizer import Tokenizer
from gptkit.train.pretrain import build_model, training_window
from gptkit.train.trainer import Trainer, training_session
from gptkit.train_config import DialogueTrainConfig, TrainConfig


@dataclass
class DialogueResult:
    trainer: Trainer
    report: FilterReport  # the training split's filter counts
    too_long: int  # responses that did not fit the context
    n_train: int
    n_val: int
    val_loss: float | None


def split_dialogues(dialogues: list[Dialogue], fraction: float, seed: int) -> tuple[list[Dialogue], list[Dialogue]]:
    """Whole dialogues held out, so validation never sees a turn it trained on."""
    if not 0 <= fraction < 1:
        raise GptkitError(f"--val-fraction must be in [0, 1), got {fraction}")
    shuffled = dialogues[:]
    random.Random(seed).shuffle(shuffled)
    n_val = round(len(shuffled) * fraction) if len(shuffled) > 1 else 0
    return shuffled[n_val:], shuffled[:n_val]


def dialogue_tokenizer(cfg: TrainConfig, dialogues: list[Dialogue]) -> Tokenizer:
    """The initial model's tokenizer when fine-tuning; otherwise a new one (char covers every turn)."""
    if cfg.init_from:
        return load_tokenizer(cfg.init_from)
    return tokenizer_from_spec(cfg.tokenizer, [t for turns in dialogues for t in turns])


def example_config(cfg: DialogueTrainConfig) -> ExampleConfig:
    """How pairs become examples, from the run's config (which the Trainer saves whole, for --resume)."""
    return ExampleConfig(max_history=cfg.max_history, loss_on_all_turns=cfg.loss_on_all_turns, reverse=cfg.reverse)


def train_dialogue(cfg: DialogueTrainConfig, progress: bool = True,
                   echo: Callable[[str], None] | None = None) -> DialogueResult:
    """Train; under torchrun, as one process of the job (see gptkit.train.distributed). ``echo``
    gets the data report's lines before the first step."""
    cfg.validate()
    filters = filter_config(cfg)
    with training_session(cfg) as device:
        return _train_dialogue(cfg, filters, device, progress, echo)


def data_report(report: FilterReport, too_long: int, n_train: int, n_val: int) -> list[str]:
    return [*report.lines(), f"{too_long:,} responses too long for the context; {n_train:,} training and "
                             f"{n_val:,} validation examples"]


def _train_dialogue(cfg: DialogueTrainConfig, filters: FilterConfig, device: torch.device,
                    progress: bool, echo: Callable[[str], None] | None) -> DialogueResult:
    torch.manual_seed(cfg.seed)
    dialogues = read_dialogues(cfg.data)
    tokenizer = dialogue_tokenizer(cfg, dialogues)
    if not cfg.reverse:  # a model to chat with: `gptkit serve` and transformers read its format
        tokenizer.chat_template = DIALOGUE_TEMPLATE
    model = build_model(cfg, tokenizer, device)
    block = training_window(cfg, model)
    train_dialogues, val_dialogues = split_dialogues(dialogues, cfg.val_fraction, cfg.seed)

    def examples(split: list[Dialogue]):
        sessions, report = filter_sessions(split, filters)
        return *build_examples(sessions, tokenizer, example_config(cfg), block), report

    train_examples, too_long, report = examples(train_dialogues)
    if not train_examples:
        raise GptkitError(f"no training examples left in {cfg.data}: {report.kept} of {report.sessions} sessions passed "
                          f"the filters and {too_long} responses were too long for the context of {block} tokens "
                          "(see the filters' --no-... flags)")
    val_examples = examples(val_dialogues)[0] if val_dialogues else []
    if echo is not None:
        for line in data_report(report, too_long, len(train_examples), len(val_examples)):
            echo(line)
    train = dialogue_batches(train_examples, cfg.batch_size, tokenizer.eot_id, seed=cfg.seed, width=block)
    val = dialogue_batches(val_examples, cfg.batch_size, tokenizer.eot_id).fixed_batches(cfg.eval_batches) if val_examples else None
    desc = "backward (MMI) model" if cfg.reverse else "dialogue model"
    trainer = Trainer(cfg, model, tokenizer, train, val, progress=progress, desc=desc)
    summary = trainer.fit()
    return DialogueResult(trainer, report, too_long, len(train_examples), len(val_examples), summary["val_loss"])
