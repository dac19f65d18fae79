"""The configs of the training commands (pretrain, finetune, dialogue train): every knob with its one
default and its --help text, loadable from YAML/TOML, saved with the run and overridden by flags.

Kept free of PyTorch (and outside gptkit.train, whose package loads it) because the command line
builds its flags from these fields: `gptkit --help` must answer at once.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args, get_origin, get_type_hints

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from gptkit.config import FIELD_TYPES
from gptkit.errors import GptkitError
from gptkit.io import read_json, read_text
from gptkit.recipes import find_recipe, recipe_keys
from gptkit.run_dir import TRAIN_CONFIG, check_output

Parallel = Literal["ddp", "fsdp"]  # how a torchrun job splits the work: replicas (DDP) or shards (FSDP2)
# torch.compile's modes; reduce-overhead replays the step as CUDA graphs (small models are launch-bound)
CompileMode = Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]  # gptkit.device's autocast precisions
Optimizer = Literal["muon", "adamw"]  # gptkit.train.optim.make_optimizer
Schedule = Literal["cosine", "noam"]  # the learning rate after its linear warmup (gptkit.train.optim.lr_at)
Task = Literal["classify", "entail", "similarity", "choice"]  # GPT-1's input transformations

# (field, lowest value, type) of every numeric knob; OPTIONAL ones may be None (a default decides).
LIMITS = (("max_steps", 1, int), ("batch_size", 1, int), ("batch_ramp", 0, int), ("batch_ramp_start", 1, int),
          ("block_size", 1, int), ("block_ramp", 0, int), ("block_ramp_start", 1, int), ("grad_accum", 1, int),
          ("lr", 0, float), ("muon_lr", 0, float), ("min_lr", 0, float), ("warmup_steps", 0, int), ("decay_steps", 1, int),
          ("weight_decay", 0, float),
          ("beta1", 0, float), ("beta2", 0, float), ("grad_clip", 0, float), ("dropout", 0, float),
          ("seed", 0, int), ("eval_every", 0, int), ("eval_batches", 1, int), ("save_every", 0, int),
          ("keep_checkpoints", 1, int), ("sample_tokens", 0, int), ("log_every", 1, int))
# What a run saved before a knob existed trained with: resumed, it goes on so, not with today's default.
BEFORE_KNOB = {"optimizer": "adamw", "batch_ramp": 0, "block_ramp": 0, "muon_momentum": 0.95}
SEED_MAX = 2**63 - 1  # torch's generators take 64 bits; the ranks' seeds add to it
OPTIONAL = {"block_size", "min_lr", "dropout", "max_steps", "warmup_steps", "decay_steps", "eval_every"}


def knob(default: Any = MISSING, help: str = "", flag: str | None = None) -> Any:
    """A field with its --help text, so the flag (gptkit.cli.options) and the default are written once.
    ``flag`` names the flag where it is not --field-name; a boolean given one is a lone switch
    (--resume), any other boolean gets --name/--no-name. A subclass that only changes a default
    keeps its base's help."""
    metadata = {"help": help} | ({"flag": flag} if flag else {})
    return field(default=default, metadata=metadata)


def flag_name(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def required(f: dataclasses.Field) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


@dataclass
class TrainConfig:
    COMMAND: ClassVar[str] = "pretrain"  # the command that trains with this config (a recipe names its own)
    # what to train on, and where to write
    preset: str = knob("shakespeare-char", "Model shape by name (see `gptkit info --list`).")
    recipe: str | None = knob(None, "Train as a paper did: gpt1, gpt2, gpt3-125M ... gpt3-175B (pretrain), dialogpt "
                                    "(dialogue train) set the preset, optimizer, schedule, batch and context; steps "
                                    "follow from the batch used. Flags override it. See `gptkit info --recipe NAME`.")
    data: str | list[str] | None = knob(None, "A directory made by `gptkit prepare`; repeat it to train on several (e.g. the "
                                              "--part directories) as one corpus, or give each a sampling weight, "
                                              "DIR:WEIGHT, to draw batches from them by weight (GPT-3's mixture). "
                                              "Default: the bundled Shakespeare.")
    tokenizer: str = knob("char", "char, wordpiece (a BERT-style vocab.txt learned from the text), gpt2, a BERT vocab.txt "
                                  "or a tokenizer directory, for text that brings none: the bundled corpus, "
                                  "dialogues without --init-from.")
    out: str = knob("runs/shakespeare", "Run directory for checkpoints, metrics and the loss curve.")
    init_from: str | None = knob(None, "Start from the weights of this model directory instead of random ones.")
    model: dict = field(default_factory=dict)  # overrides of the preset, e.g. {"n_layer": 2} (config files only)
    # optimisation (Muon and AdamW, or AdamW alone; linear warmup then cosine decay to min_lr)
    optimizer: Optimizer = knob("muon", "muon: Muon (momentum made orthogonal by Newton-Schulz; Jordan et al. 2024) for the "
                                        "blocks' weight matrices, AdamW for the embeddings, biases and gains: about 2x "
                                        "less training to the same loss (docs/pretraining.md). adamw: AdamW for all, as "
                                        "the GPT papers trained.")
    max_steps: int = knob(900, "Optimizer steps to train for.")
    batch_size: int = knob(32, "Examples per micro-batch of the whole job; under torchrun each process takes 1/world.")
    batch_ramp: int = knob(600, "Steps over which the batch grows linearly from --batch-ramp-start examples to --batch-size, "
                                 "in multiples of the start, as GPT-3 ramped its batch: small batches learn more per token "
                                 "early on. 0 (or a start not below the batch): the whole batch from the first step.")
    batch_ramp_start: int = knob(8, "Examples per micro-batch at the first step of --batch-ramp.")
    block_size: int | None = knob(None, "Context length of the training windows. Default: the preset's.")
    block_ramp: int = knob(0, "Steps over which the windows grow linearly from --block-ramp-start tokens to --block-size, "
                                "in multiples of the start (sequence-length warmup). Pretraining only. 0 (the default: "
                                "with Muon it no longer pays, and the positions past the short windows stay untrained "
                                "until they grow), or a start not below the windows: whole windows from the first step.")
    block_ramp_start: int = knob(64, "Tokens per window at the first step of --block-ramp.")
    grad_accum: int = knob(1, "Micro-batches accumulated per optimizer step.")
    lr: float = knob(3e-3, "Peak learning rate (after warmup, before the decay).")
    muon_lr: float = knob(9e-3, "Muon's peak learning rate, in AdamW's units (each matrix's is scaled by 0.2 sqrt(its "
                                "larger side)); it follows --lr's warmup and decay.")
    muon_momentum: float = knob(0.9, "Muon's momentum (Nesterov). 0.9 learned more by step 400 of the default job than the "
                                     "0.95 of torch.optim.Muon and Jordan et al. (docs/pretraining.md).")
    min_lr: float | None = knob(None, "Learning rate at the end of the cosine decay. Default: lr / 10.")
    warmup_steps: int = knob(50, "Steps of linear warmup.")
    decay_steps: int | None = knob(None, "Steps (from the start) of the cosine decay to min_lr, which then holds (GPT-3 "
                                         "decays over 260B of its 300B tokens). Default: max_steps.")
    schedule: Schedule = knob("cosine", "After the warmup: cosine decay to min_lr, or noam, lr x sqrt(warmup / step) "
                                        "(the Transformer's, DialoGPT's), never below min_lr.")
    weight_decay: float = knob(0.1, "AdamW's decoupled weight decay.")
    beta1: float = knob(0.9, "AdamW's beta1.")
    beta2: float = knob(0.95, "AdamW's beta2.")
    grad_clip: float = knob(1.0, "Clip the gradient's norm to this.")
    dropout: float | None = knob(None, "Dropout probability. Default: the preset's.")
    # machinery
    seed: int = knob(1337, "Seed of the initialisation, the batches and the sample.")
    device: str = knob("auto", "auto (cuda, else mps, else cpu), cpu, cuda, cuda:1, mps.")
    dtype: Precision = knob("auto", "Autocast precision. auto: bf16 on GPUs that have it, fp16 on others, fp32 on CPUs.")
    compile: bool = knob(False, "torch.compile the model.")
    compile_mode: CompileMode = knob("default", "torch.compile's mode, with --compile: reduce-overhead replays each step "
                                                "as CUDA graphs (small models on a GPU).")
    fused_loss: bool = knob(True, "The loss chunk by chunk inside the model's forward, never the whole (B, T, vocab) logits.")
    eval_every: int = knob(50, "Validate every N steps (0: only at the end).")
    log_every: int = knob(10, "Steps between reads of the loss from the GPU (every step is still logged).")
    eval_batches: int = knob(5, "Validation batches per validation.")
    save_every: int = knob(500, "Checkpoint every N steps (and always at the end).")
    keep_checkpoints: int = knob(2, "How many of the newest checkpoints to keep.")
    resume: bool = knob(False, "Continue the run in --out from its newest checkpoint, with its saved settings "
                               "(flags given override them).", flag="--resume")
    overwrite: bool = knob(False, "Start afresh where --out holds a run: the old run is moved aside to OUT.old-<time>, "
                                  "never deleted.", flag="--overwrite")
    parallel: Parallel = knob("ddp", "Under torchrun: ddp (a model replica per process) or fsdp (FSDP2 shards).")
    sample_tokens: int = knob(400, "Length of the sample printed at the end (0: none).")

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
        if self.block_ramp and self.COMMAND != "pretrain":
            raise GptkitError(f"--block-ramp shortens pretraining's windows; `gptkit {self.COMMAND}` trains on whole "
                              "examples: leave it at 0")
        if self.lr <= 0:
            raise GptkitError(f"--lr must be positive, got {self.lr}")
        if self.optimizer == "muon" and self.muon_lr <= 0:
            raise GptkitError(f"--muon-lr must be positive, got {self.muon_lr} (or train with --optimizer adamw)")
        for name in ("beta1", "beta2", "muon_momentum", "dropout"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                raise GptkitError(f"--{name.replace('_', '-')} must be in [0, 1), got {value}")
        self._check_choices()
        if self.compile_mode != "default" and not self.compile:
            raise GptkitError(f"--compile-mode {self.compile_mode} is a mode of torch.compile: add --compile")
        if not isinstance(self.model, dict):
            raise GptkitError(f"model must be a mapping of preset overrides such as {{n_layer: 2}}, got {self.model!r}")
        unknown = sorted(set(self.model) - set(FIELD_TYPES))
        if unknown:
            raise GptkitError(f"model: unknown keys {', '.join(map(str, unknown))}; valid keys: {', '.join(FIELD_TYPES)}")
        self.corpora()
        if self.recipe is not None:
            find_recipe(self.recipe)

    def _check_choices(self) -> None:
        """Each Literal field holds one of its values (a config file or the Python API skip click's check)."""
        hints = get_type_hints(type(self))
        for f in dataclasses.fields(self):
            choices = get_args(hints[f.name]) if get_origin(hints[f.name]) is Literal else ()
            value = getattr(self, f.name)
            if choices and value not in choices:
                raise GptkitError(f"{flag_name(f)} must be one of {', '.join(choices)}; got {value!r}")

    @classmethod
    def from_file(cls, path: str | Path) -> dict:
        """The keys of a YAML or TOML config file, checked against the config's fields."""
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
        config file's keys, then the flags that were given (None means not given); a ``recipe``
        among them fills what none of these gives. Build a recipe's config here, from Python too:
        ``TrainConfig(recipe=...)`` alone records the name and applies nothing."""
        keys: dict = {}
        fields = dataclasses.fields(cls)
        out = flags.get("out") or next(f.default for f in fields if f.name == "out")
        if flags.get("resume"):
            if out is MISSING:
                raise GptkitError("--resume: give --out, the run directory to continue")
            saved = Path(out) / TRAIN_CONFIG
            if not saved.is_file():
                raise GptkitError(f"--resume: {out} holds no run to resume ({TRAIN_CONFIG} is missing); start it without --resume")
            saved_keys = {**BEFORE_KNOB, **read_json(saved, fix="start the run again without --resume")}
            keys.update({k: v for k, v in saved_keys.items() if k not in ("resume", "overwrite")})
        if config_file:
            keys.update(cls.from_file(config_file))
        keys.update({k: v for k, v in flags.items() if v is not None})
        if keys.get("recipe"):  # the paper's values, under the file's and the flags'
            keys = {**recipe_keys(keys["recipe"], cls.COMMAND, keys, lambda: train_tokens(keys.get("data"))), **keys}
        missing = [flag_name(f) for f in fields if required(f) and f.name not in keys]
        if missing:
            raise GptkitError(f"missing {', '.join(missing)}: give them, or --resume the run in --out that has them")
        return cls(**{f.name: keys[f.name] for f in fields if f.name in keys})

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    def corpora(self) -> tuple[list[str], list[float] | None]:
        """The --data directories and, for a weighted mixture (DIR:WEIGHT), their weights summing to 1;
        None when no directory has a weight (they are then read as one corpus)."""
        return parse_data([self.data] if isinstance(self.data, str) else self.data or [])

    def inputs(self) -> list[str]:
        """What the run reads, which its --out must not overlap (gptkit.run_dir.check_output)."""
        return [p for p in (self.init_from, *self.corpora()[0]) if p]

    def check_out(self) -> None:
        """Refuse at once, before PyTorch loads, an --out that another process writes, that holds
        something other than a run, or that overlaps an input; the Trainer then holds it."""
        check_output(self.out, "run", self.inputs())


def parse_data(entries: list[str]) -> tuple[list[str], list[float] | None]:
    """``DIR`` or ``DIR:WEIGHT`` entries -> (directories, normalised weights or None). A directory
    whose own name holds a colon is taken whole when it exists."""
    dirs, weights = [], []
    for entry in map(str, entries):  # a config file may hold numbers
        path, weight = entry, None
        if ":" in entry and not Path(entry).exists():
            path, text = entry.rsplit(":", 1)
            try:
                weight = float(text)
            except ValueError:
                weight = math.nan
            if not (math.isfinite(weight) and weight > 0):
                raise GptkitError(f"--data {entry}: the weight after ':' must be a positive number, e.g. {path}:0.6")
        dirs.append(path)
        weights.append(weight)
    given = [w is not None for w in weights]
    if any(given) and not all(given):
        bare = dirs[given.index(False)]
        raise GptkitError(f"--data {bare} has no weight: give every directory a weight (DIR:WEIGHT) or none")
    if len(set(dirs)) < len(dirs):
        twice = next(d for d in dirs if dirs.count(d) > 1)
        raise GptkitError(f"--data {twice} is given twice: give each directory once (its weight says how often it is drawn)")
    return dirs, ([w / sum(weights) for w in weights] if any(given) else None)


def train_tokens(data: str | list[str] | None) -> int | None:
    """The training tokens of --data, from its meta.json (a recipe counted in epochs asks); None
    without --data."""
    from gptkit.data.prepare import read_meta  # only then: it brings NumPy

    dirs = parse_data([data] if isinstance(data, str) else data or [])[0]
    return sum(read_meta(d)["splits"].get("train", {}).get("tokens", 0) for d in dirs) if dirs else None


@dataclass(kw_only=True)
class FinetuneConfig(TrainConfig):
    """GPT-1's fine-tuning: the shared training knobs with the paper's defaults, plus the task.

    ``init_from`` is the pretrained model (required); ``max_steps`` defaults to ``epochs`` epochs,
    ``warmup_steps`` to 0.2% of the steps, ``eval_every`` (and checkpoints) to once per epoch.
    """

    COMMAND: ClassVar[str] = "finetune"

    task: Task = knob(help="The task's input transformation and head (see docs/finetuning.md).")
    train: str = knob(help="Labelled .jsonl, .csv or .tsv file (see docs/finetuning.md), or a bundled set by name: "
                           "play, reply, speaker, nextline.")
    valid: str = knob(help="Validation file, same columns: metrics and early stopping (a bundled set's name: its "
                           "validation split).")
    init_from: str = knob(help="The pretrained model (a model or run directory).", flag="--model")
    out: str = knob(help="Directory for the best model, metrics.json and the training log.")
    lm_coef: float = knob(0.5, "λ, weight of the auxiliary LM loss.")
    batch_ramp: int = 0  # GPT-1 fine-tunes on whole batches of whole examples
    block_ramp: int = 0
    optimizer: Optimizer = "adamw"  # GPT-1 fine-tuned with Adam
    epochs: int = knob(3, "Passes over the training file.")
    clf_dropout: float = knob(0.1, "Dropout before the task head.")
    patience: int = knob(2, "Validations without improvement before stopping.")
    lr: float = 6.25e-5
    weight_decay: float = 0.01
    beta2: float = 0.999
    max_steps: int | None = knob(None, "Stop after this many steps even within the epochs.")
    warmup_steps: int | None = knob(None, "Linear warmup steps. Default: 0.2% of the steps, as GPT-1.")
    eval_every: int | None = knob(None, "Validate (and checkpoint) every N steps. Default: once per epoch.")
    seed: int = 0
    sample_tokens: int = 0

    def validate(self) -> None:
        super().validate()
        for name, value in (("epochs", self.epochs), ("patience", self.patience)):
            if not isinstance(value, int) or value < 1:
                raise GptkitError(f"--{name} must be a whole number >= 1, got {value!r}")
        if not (isinstance(self.lm_coef, (int, float)) and math.isfinite(self.lm_coef) and self.lm_coef >= 0):
            raise GptkitError(f"--lm-coef must be a number >= 0, got {self.lm_coef!r}")
        if not 0 <= self.clf_dropout < 1:
            raise GptkitError(f"--clf-dropout must be in [0, 1), got {self.clf_dropout}")

    def for_steps(self, steps_per_epoch: int) -> FinetuneConfig:
        """The run's schedule in steps, once the size of an epoch is known."""
        total = self.epochs * steps_per_epoch
        max_steps = min(self.max_steps or total, total)
        every = self.eval_every or steps_per_epoch
        warmup = self.warmup_steps if self.warmup_steps is not None else max(1, round(0.002 * max_steps))
        return dataclasses.replace(self, max_steps=max_steps, warmup_steps=warmup, eval_every=every, save_every=every)


@dataclass
class DialogueTrainConfig(TrainConfig):
    """DialoGPT-style dialogue training: the shared knobs plus the data, its filters and how pairs
    become examples. The Trainer saves it whole, so --resume rebuilds the same examples."""

    COMMAND: ClassVar[str] = "dialogue train"

    data: str = knob("shakespeare", "Dialogues: .jsonl (a list of turns per line), plain text (a turn per line, a blank "
                                    "line between dialogues), LCCC .json, or a bundled corpus: shakespeare, tang, chatterbot-zh.")
    out: str = "runs/chat"
    reverse: bool = knob(False, "Train the backward (MMI) model: P(source | response).", flag="--reverse")
    max_history: int = knob(0, "History turns before each response (0: every earlier turn of the session that fits the "
                               "context, as DialoGPT and GPT2-chitchat train).")
    loss_on_all_turns: bool = knob(False, "Train on every turn, not only the responses.", flag="--loss-on-all-turns")
    val_fraction: float = knob(0.05, "Share of dialogues held out.")
    url_filter: bool = knob(True, "Cut sessions at a turn with a link (http(s)://, ftp://, www., bare domains).")
    repeat_filter: bool = knob(True, "Cut sessions at a response with a word (CJK: character) three times in a row.")
    common_word_filter: bool = knob(True, "Cut sessions at a response without any of its language's 50 most common "
                                          "words (English) or characters (Chinese).")
    bracket_filter: bool = knob(True, "Cut sessions at a response with [ ] or 【 】.")
    max_words: int = knob(200, "Cut sessions at a turn longer than this many words, characters in Chinese/Japanese "
                               "(0: no limit).")
    blocklist: str | None = knob(None, "File of phrases, one per line, matched as whole words (Chinese: characters): "
                                       "sessions are cut at a turn with one.")
    blocked_substrings: str | None = knob(None, "File of substrings, one per line, matched anywhere (inside words too): "
                                                "sessions are cut at a turn with one.")
    max_response_count: int | None = knob(1000, "Cut sessions at a response seen more than N times (DialoGPT: 1,000).")
    max_steps: int = 1000
    batch_ramp: int = 0  # whole batches of whole examples
    block_ramp: int = 0
    optimizer: Optimizer = "adamw"  # as DialoGPT trained
    eval_every: int = 100
    eval_batches: int = 10
    lr: float = 1e-3
    warmup_steps: int = 50
    sample_tokens: int = 0

    def corpora(self) -> tuple[list[str], list[float] | None]:
        """One dialogue file or bundled corpus: never a weighted mixture."""
        return [self.data], None
