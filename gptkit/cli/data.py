"""`gptkit prepare` and `gptkit tokenizer`: text in, token shards and vocabularies out."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gptkit.cli.main import cli


@cli.command()
@click.option("--input", "inputs", multiple=True, required=True,
              help="Text files, .jsonl files (field 'text'), directories or globs; repeatable. 'shakespeare' is the bundled corpus.")
@click.option("--tokenizer", default="gpt2", show_default=True, help="gpt2, char, or a tokenizer directory.")
@click.option("--out", required=True, help="Directory for the shards, meta.json and the tokenizer.")
@click.option("--val-fraction", type=float, default=0.05, show_default=True, help="Share of documents held out for validation.")
@click.option("--workers", type=int, default=None, help="Tokenizer processes (default: all cores).")
@click.option("--shard-tokens", type=int, default=100_000_000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def prepare(inputs, tokenizer, out, val_fraction, workers, shard_tokens, seed) -> None:
    """Tokenize text into token shards for pretraining."""
    import os

    from gptkit.data import prepare_files
    from gptkit.data.prepare import iter_texts
    from gptkit.train.pretrain import make_tokenizer, prepare_bundled_shakespeare

    if list(inputs) == ["shakespeare"] and not Path("shakespeare").exists():
        prepare_bundled_shakespeare(Path(out), tokenizer)
    else:
        texts = list(iter_texts(list(inputs))) if tokenizer == "char" else []
        tok = make_tokenizer(tokenizer, texts)
        prepare_files(list(inputs), tok, out, val_fraction=val_fraction, seed=seed,
                      workers=workers or os.cpu_count() or 1, shard_tokens=shard_tokens)
    meta = json.loads((Path(out) / "meta.json").read_text(encoding="utf-8"))
    for split, info in meta["splits"].items():
        click.echo(f"{split}: {info['documents']:,} documents, {info['tokens']:,} tokens in {len(info['shards'])} shard(s)")
    click.echo(f"wrote {out} ({meta['dtype']}, vocabulary {meta['vocab_size']:,})")




@cli.group()
def tokenizer() -> None:
    """Train or try out tokenizers."""


@tokenizer.command("train")
@click.option("--input", "inputs", multiple=True, required=True, help="Text/.jsonl files, directories or globs; repeatable.")
@click.option("--vocab-size", type=int, required=True)
@click.option("--min-frequency", type=int, default=2, show_default=True)
@click.option("--out", required=True, help="Directory for vocab.json, merges.txt and tokenizer_config.json.")
def tokenizer_train(inputs, vocab_size, min_frequency, out) -> None:
    """Learn a byte-level BPE vocabulary from your own text."""
    from gptkit.data.prepare import iter_texts
    from gptkit.tokenizer import Tokenizer

    tok = Tokenizer.train_bpe(iter_texts(list(inputs)), vocab_size, min_frequency)
    tok.save(out)
    click.echo(f"trained a byte-level BPE of {tok.vocab_size:,} tokens; wrote {out}")


@tokenizer.command("encode")
@click.option("--tokenizer", "spec", default="gpt2", show_default=True, help="gpt2 or a tokenizer directory.")
@click.argument("text")
def tokenizer_encode(spec, text) -> None:
    """Show the token ids and pieces of TEXT."""
    from gptkit.train.pretrain import make_tokenizer

    tok = make_tokenizer(spec, [text])
    ids = tok.encode(text)
    click.echo(json.dumps(ids))
    click.echo(" | ".join(repr(tok.decode([i])) for i in ids))
