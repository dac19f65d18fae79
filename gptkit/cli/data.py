"""`gptkit prepare` and `gptkit tokenizer`: text in, token shards and vocabularies out."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gptkit.cli.group import cli


@cli.command()
@click.option("--input", "inputs", multiple=True, required=True,
              help="Text files, .jsonl / .jsonl.gz / .jsonl.zst or .parquet files, directories or globs; repeatable. "
                   "'shakespeare' is the bundled corpus.")
@click.option("--tokenizer", default="gpt2", show_default=True, help="gpt2, char, or a tokenizer directory.")
@click.option("--out", required=True, help="Directory for the shards, meta.json and the tokenizer.")
@click.option("--val-fraction", type=float, default=0.05, show_default=True,
              help="Share of documents held out for validation, in [0, 1).")
@click.option("--workers", type=int, default=None, help="Tokenizer threads (default: all cores).")
@click.option("--shard-tokens", type=int, default=100_000_000, show_default=True, help="Tokens per shard file.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the validation draw.")
@click.option("--text-field", default="text", show_default=True, help="The text's field in .jsonl, or column in .parquet.")
@click.option("--part", default="1/1", show_default=True,
              help="I/N: prepare only the I-th of N equal slices of the documents (one per machine).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def prepare(inputs, tokenizer, out, val_fraction, workers, shard_tokens, seed, text_field, part, quiet) -> None:
    """Tokenize text into token shards for pretraining. Run again after an interruption to resume."""
    import os
    import time

    from gptkit.data.prepare import check_settings, prepare_files, prepare_shakespeare, read_meta, summary
    from gptkit.data.vocab import corpus_characters, tokenizer_from_spec

    workers = (os.cpu_count() or 1) if workers is None else workers
    check_settings(workers, shard_tokens, val_fraction, part)
    started = time.perf_counter()
    if list(inputs) == ["shakespeare"] and not Path("shakespeare").exists():
        prepare_shakespeare(Path(out), tokenizer, progress=not quiet)
    else:
        texts = [corpus_characters(list(inputs), text_field)] if tokenizer == "char" else []
        prepare_files(list(inputs), tokenizer_from_spec(tokenizer, texts), out, val_fraction=val_fraction, seed=seed,
                      text_field=text_field, part=part, workers=workers, shard_tokens=shard_tokens, progress=not quiet)
    meta = read_meta(out)
    for line in summary(meta, time.perf_counter() - started):
        click.echo(line)
    click.echo(f"wrote {out} ({meta['dtype']}, vocabulary {meta['vocab_size']:,})")


@cli.group()
def tokenizer() -> None:
    """Train or try out tokenizers."""


@tokenizer.command("train")
@click.option("--input", "inputs", multiple=True, required=True,
              help="Text, .jsonl(.gz/.zst) or .parquet files, directories or globs; repeatable.")
@click.option("--vocab-size", type=int, required=True, help="Tokens in the vocabulary (257 to 16,777,216).")
@click.option("--min-frequency", type=int, default=2, show_default=True, help="Pairs seen fewer times are not merged.")
@click.option("--text-field", default="text", show_default=True, help="The text's field in .jsonl, or column in .parquet.")
@click.option("--out", required=True, help="Directory for vocab.json, merges.txt and tokenizer_config.json.")
def tokenizer_train(inputs, vocab_size, min_frequency, text_field, out) -> None:
    """Learn a byte-level BPE vocabulary from your own text."""
    from gptkit.data import train_tokenizer
    from gptkit.run_dir import check_output, owned

    check_output(out, "tokenizer", inputs)
    with owned(out):
        tok = train_tokenizer(list(inputs), vocab_size, min_frequency, text_field)
        tok.save(out)
    click.echo(f"trained a byte-level BPE of {tok.vocab_size:,} tokens; wrote {out}")


@tokenizer.command("encode")
@click.option("--tokenizer", "spec", default="gpt2", show_default=True, help="gpt2 or a tokenizer directory.")
@click.argument("text")
def tokenizer_encode(spec, text) -> None:
    """Show the token ids and pieces of TEXT."""
    from gptkit.data.vocab import tokenizer_from_spec

    tok = tokenizer_from_spec(spec, [text])
    ids = tok.encode(text)
    click.echo(json.dumps(ids))
    click.echo(" | ".join(repr(tok.decode([i])) for i in ids))
