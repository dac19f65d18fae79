"""`gptkit dialogue train` and `gptkit chat`: DialoGPT-style dialogue models on the command line."""

from __future__ import annotations

import click

from gptkit.cli.generate import load_for_inference, precision_options
from gptkit.cli.group import cli
from gptkit.cli.options import config_options
from gptkit.cli.train import config_file_option, training_options
from gptkit.train_config import DialogueTrainConfig


@cli.group()
def dialogue() -> None:
    """Train dialogue models (DialoGPT): a forward chat model and a backward one for MMI."""


@dialogue.command("train")
@config_file_option(DialogueTrainConfig)
@config_options(DialogueTrainConfig, "data", "out", "reverse", "init_from", "preset", "recipe", "tokenizer", "max_history",
                "loss_on_all_turns", "val_fraction", "url_filter", "repeat_filter", "common_word_filter", "bracket_filter",
                "max_words", "blocklist", "blocked_substrings", "max_response_count", "max_steps", "batch_size", "lr", "warmup_steps",
                "eval_every", "save_every", "keep_checkpoints", "seed", "resume")
@training_options(DialogueTrainConfig)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def dialogue_train(config_file, quiet, **flags) -> None:
    """Train a dialogue model on turns joined by end-of-text, the loss on the responses."""
    cfg = DialogueTrainConfig.resolve(flags, config_file)
    cfg.check_out()
    from gptkit.chat import train_dialogue
    from gptkit.train import distributed

    result = train_dialogue(cfg, progress=not quiet, echo=click.echo if distributed.is_main() else None)
    if not distributed.is_main():
        return
    val = "-" if result.val_loss is None else f"{result.val_loss:.3f}"
    kind = "backward (MMI)" if cfg.reverse else "dialogue"
    click.echo(f"trained the {kind} model {result.trainer.step} steps; validation loss {val}; model: {cfg.out}")


@dialogue.command("extract")
@click.option("--input", "inputs", multiple=True, required=True,
              help="Reddit comments and submissions as JSON lines (plain, .zst, .gz or .bz2): files or globs; repeatable.")
@click.option("--out", required=True, help="The sessions: a JSON list of turns a line, for `dialogue train --data`.")
@click.option("--no-filters", is_flag=True, help="Keep every turn but deleted ones and skipped authors' (no content filters).")
@config_options(DialogueTrainConfig, "url_filter", "repeat_filter", "common_word_filter", "bracket_filter", "max_words",
                "blocklist", "blocked_substrings", "max_response_count")
@click.option("--skip-author", "skip_authors", multiple=True, default=["AutoModerator"], show_default=True,
              help="An author (a bot) whose comments end a session like deleted ones; repeatable.")
@click.option("--part", default="1/1", show_default=True, help="I/N: only the I-th of N disjoint sets of threads.")
@click.option("--partition-mb", type=click.IntRange(min=1), default=32, show_default=True,
              help="Dump text per partition: the memory one step holds is a few times this.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def dialogue_extract(inputs, out, no_filters, skip_authors, part, partition_mb, quiet, **filter_flags) -> None:
    """Reddit threads to DialoGPT sessions: every root-to-leaf path of each thread's comment tree,
    the submission's title first. Run again after an interruption to resume."""
    from gptkit.chat.filters import filter_config
    from gptkit.chat.reddit import ExtractConfig, extract

    given = {k: v for k, v in filter_flags.items() if v is not None}  # the same filters as dialogue train's
    filters = None if no_filters else filter_config(DialogueTrainConfig(**given))
    report = extract(ExtractConfig(list(inputs), out, filters, tuple(skip_authors), part, partition_mb << 20),
                     progress=not quiet)
    for line in report.lines(f"wrote {report.kept:,} sessions ({report.turns:,} turns) to {out}"):
        click.echo(line)


@cli.command()
@click.option("--model", "model_dir", required=True, help="A dialogue model or training run directory.")
@click.option("--mmi-model", help="A backward model (dialogue train --reverse) to rerank sampled replies.")
@click.option("--num-hypotheses", type=click.IntRange(min=1), default=8, show_default=True, help="Replies sampled for MMI.")
@click.option("--max-history", type=click.IntRange(min=1), default=2, show_default=True, help="Turns the model sees.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=64, show_default=True, help="Longest reply, in tokens.")
@click.option("--temperature", type=float, default=0.8, show_default=True)
@click.option("--top-k", type=int, default=40, show_default=True)
@click.option("--top-p", type=float, default=None)
@click.option("--repetition-penalty", type=float, default=1.0, show_default=True,
              help="Above 1 makes tokens already in the conversation less likely (keep 1 for character vocabularies).")
@click.option("--seed", type=int, default=None)
@click.option("--verbose", is_flag=True, help="Show every MMI hypothesis with its backward and forward scores.")
@click.option("--device", default="auto", show_default=True)
@precision_options
def chat(model_dir, mmi_model, num_hypotheses, max_history, max_new_tokens, verbose, device, dtype, quantize,
         **sampling) -> None:
    """Talk to a dialogue model. /reset clears the history, /save FILE writes the transcript,
    /quit, Ctrl-D or Ctrl-C exits."""
    from gptkit.chat import Chatbot, ChatConfig
    from gptkit.chat.repl import Repl
    from gptkit.inference import SamplingConfig

    cfg = ChatConfig(SamplingConfig(max_new_tokens=max_new_tokens, **sampling), max_history, num_hypotheses)  # fails before loading
    model, tokenizer = load_for_inference(model_dir, device, dtype, quantize)
    backward = load_for_inference(mmi_model, device, dtype, quantize) if mmi_model else None
    Repl(Chatbot(model.eval(), tokenizer, cfg, backward and (backward[0].eval(), backward[1])), verbose).run()
