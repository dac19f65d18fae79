"""`gptkit dialogue train` and `gptkit chat`: DialoGPT-style dialogue models on the command line."""

from __future__ import annotations

import click

from gptkit.cli.generate import load_for_inference, precision_options
from gptkit.cli.group import cli
from gptkit.cli.train import given, training_options


@cli.group()
def dialogue() -> None:
    """Train dialogue models (DialoGPT): a forward chat model and a backward one for MMI."""


@dialogue.command("train")
@click.option("--data", default="shakespeare", show_default=True,
              help="Dialogues: .jsonl (a list of turns per line), plain text (a turn per line, a blank line "
                   "between dialogues), or a bundled corpus: shakespeare, tang.")
@click.option("--out", default="runs/chat", show_default=True, help="Run directory.")
@click.option("--reverse", is_flag=True, help="Train the backward (MMI) model: P(source | response).")
@click.option("--init-from", help="Start from this model's weights and tokenizer (recommended).")
@click.option("--preset", default="shakespeare-char", show_default=True, help="Model shape when not --init-from.")
@click.option("--tokenizer", default="char", show_default=True, help="char, gpt2 or a directory, when not --init-from.")
@click.option("--max-history", type=int, default=2, show_default=True, help="History turns before each response.")
@click.option("--loss-on-all-turns", is_flag=True, help="Train on every turn, not only the responses.")
@click.option("--val-fraction", type=float, default=0.05, show_default=True, help="Share of dialogues held out.")
@click.option("--no-url-filter", is_flag=True, help="Keep pairs with a URL.")
@click.option("--no-repeat-filter", is_flag=True, help="Keep responses with a word three times in a row.")
@click.option("--no-common-word-filter", is_flag=True,
              help="Keep responses without any of the 50 most common English words (needed for other languages).")
@click.option("--no-bracket-filter", is_flag=True, help="Keep responses with [ or ].")
@click.option("--max-words", type=int, default=200, show_default=True, help="Drop pairs longer than this (0: no limit).")
@click.option("--blocklist", type=click.Path(dir_okay=False), help="File of offensive words, one per line.")
@click.option("--max-response-count", type=int, help="Drop responses that occur more than N times.")
@click.option("--max-steps", type=int, default=1000, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--warmup-steps", type=int, default=50, show_default=True)
@click.option("--eval-every", type=int, default=250, show_default=True)
@click.option("--save-every", type=int, default=500, show_default=True)
@click.option("--keep-checkpoints", type=int, default=2, show_default=True, help="How many of the newest checkpoints to keep.")
@click.option("--seed", type=int, default=1337, show_default=True)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its newest checkpoint (same data and flags).")
@training_options()
@click.option("--quiet", is_flag=True, help="No progress bar.")
def dialogue_train(data, reverse, max_history, loss_on_all_turns, val_fraction, no_url_filter, no_repeat_filter,
                   no_common_word_filter, no_bracket_filter, max_words, blocklist, max_response_count, quiet,
                   **train) -> None:
    """Train a dialogue model on turns joined by end-of-text, the loss on the responses."""
    from gptkit.chat import DialogueConfig, ExampleConfig, FilterConfig, train_dialogue
    from gptkit.train import TrainConfig, distributed

    filters = FilterConfig(urls=not no_url_filter, repeated_words=not no_repeat_filter,
                           common_words=not no_common_word_filter, brackets=not no_bracket_filter,
                           max_words=max_words or None, max_response_count=max_response_count,
                           blocklist=FilterConfig.read_blocklist(blocklist) if blocklist else frozenset())
    examples = ExampleConfig(max_history=max_history, loss_on_all_turns=loss_on_all_turns, reverse=reverse)
    cfg = TrainConfig(sample_tokens=0, **given(train))
    result = train_dialogue(cfg, DialogueConfig(data, val_fraction, examples, filters), progress=not quiet)
    if not distributed.is_main():
        return
    for line in result.report.lines():
        click.echo(line)
    click.echo(f"{result.too_long:,} pairs too long for the context; {result.n_train:,} training and "
               f"{result.n_val:,} validation examples")
    val = "-" if result.val_loss is None else f"{result.val_loss:.3f}"
    kind = "backward (MMI)" if reverse else "dialogue"
    click.echo(f"trained the {kind} model {result.trainer.step} steps; validation loss {val}; model: {cfg.out}")


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
