"""`gptkit corpus`: the steps from raw text to a corpus worth tokenizing (dedup, filter,
decontaminate) and the quality classifier filter uses. Each prints its report's one-line summary."""

from __future__ import annotations

import click

from gptkit.cli.group import cli


@cli.group()
def corpus() -> None:
    """Clean a corpus as the GPT papers did: dedup, filter, decontaminate (before `gptkit prepare`).

    Each step reads JSON Lines (.jsonl, .jsonl.gz, .jsonl.zst), parquet or text files, writes the
    documents it keeps, unchanged and in input order, to DIR/part-I-of-N.jsonl with a report
    (DIR/report.json), resumes when run again, and splits over processes or machines with --part I/N.
    """


def _common(command):
    """The options every step takes."""
    options = [
        click.option("--input", "inputs", multiple=True, required=True,
                     help="JSON Lines (.jsonl, .jsonl.gz, .jsonl.zst), .parquet or text files, directories or globs; "
                          "repeatable."),
        click.option("--out", required=True, help="Directory for the kept documents and the report."),
        click.option("--text-field", default="text", show_default=True, help="The text's field in .jsonl, or column in .parquet."),
        click.option("--compression", type=click.Choice(["none", "gz", "zst"]), default="none", show_default=True,
                     help="Compress the output (.jsonl.gz or .jsonl.zst)."),
        click.option("--quiet", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


_PART = click.option("--part", default="1/1", show_default=True,
                     help="I/N: process only the I-th of N equal slices of the documents (one per process or machine).")


class _Bar:
    """A progress bar of documents and MB read, one per stage, shown once there is progress (so an
    error found first stands alone); nothing with --quiet."""

    def __init__(self, quiet: bool, what: str):
        self.quiet, self.what, self.bar, self.chars = quiet, what, None, 0

    def __call__(self, docs: int, chars: int) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(unit=" docs", desc=self.what, dynamic_ncols=True)
        self.chars += chars
        self.bar.update(docs)
        self.bar.set_postfix_str(f"{self.chars / 1e6:,.1f} MB", refresh=False)

    def stage(self, name: str) -> None:
        """A new stage: its own bar from zero."""
        self.close()
        self.what, self.chars = name, 0

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _finish(bar: _Bar, report: dict, out: str) -> None:
    from pathlib import Path

    from gptkit.corpus.step import part_name

    bar.close()
    click.echo(report["summary"])
    index, parts = (int(n) for n in report["part"].split("/"))
    name = "report.json" if parts == 1 else f"report-{part_name((index, parts))}.json"
    whole = " and report.json, every part being done" if parts > 1 and (Path(out) / "report.json").is_file() else ""
    click.echo(f"wrote {out} ({', '.join(report['outputs'])}, {name}{whole})")


@corpus.command()
@_common
@_PART
@click.option("--merge", "merge_only", is_flag=True,
              help="Merge the parts signed with --part I/N (every one of them) and write the kept documents.")
@click.option("--threshold", type=float, default=0.8, show_default=True,
              help="Near duplicates: Jaccard similarity of the word n-gram sets at least this.")
@click.option("--ngram", type=int, default=5, show_default=True, help="Words per shingle.")
@click.option("--bands", type=int, default=20, show_default=True, help="LSH bands of the MinHash signature.")
@click.option("--rows", type=int, default=5, show_default=True, help="Signature values per band (bands x rows permutations).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the MinHash permutations.")
def dedup(inputs, out, text_field, compression, quiet, part, merge_only, threshold, ngram, bands, rows, seed) -> None:
    """Remove exact and near-duplicate documents (MinHash LSH, checked against the true Jaccard similarity).

    The first document of each cluster of duplicates, in input order, is kept. For many machines: run
    --part I/N on each (all see the inputs and --out), then --merge once.
    """
    from gptkit.corpus.dedup import Settings, dedup_files

    bar = _Bar(quiet, "sign")
    result = dedup_files(list(inputs), out, Settings(threshold, ngram, bands, rows, seed), part, merge_only, text_field,
                         compression, bar, bar.stage)
    if "summary" not in result:  # a part signed
        bar.close()
        click.echo(f"dedup: signed part {part}: {result['documents']:,} documents, {result['chars'] / 1e6:,.1f} MB in "
                   f"{result['seconds']:.1f} s; when every part is signed, run the same command with --merge instead of --part")
        return
    _finish(bar, result, out)


@corpus.command("filter")
@_common
@_PART
@click.option("--classifier", type=click.Path(dir_okay=False),
              help="A classifier from `gptkit corpus classifier`: keep by GPT-3's Pareto rule on its score.")
@click.option("--alpha", type=float, default=9.0, show_default=True, help="Shape of the Pareto rule (GPT-3: 9).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the Pareto draws.")
@click.option("--no-rules", is_flag=True, help="Skip the heuristic rules (the classifier alone).")
@click.option("--min-words", type=int, default=50, show_default=True)
@click.option("--max-words", type=int, default=100_000, show_default=True)
@click.option("--min-mean-word-length", type=float, default=3.0, show_default=True)
@click.option("--max-mean-word-length", type=float, default=10.0, show_default=True)
@click.option("--max-symbol-ratio", type=float, default=0.1, show_default=True, help="Hash signs and ellipses per word.")
@click.option("--max-repeated-lines", type=float, default=0.3, show_default=True,
              help="Share of lines that repeat an earlier line.")
@click.option("--max-repeated-line-chars", type=float, default=0.2, show_default=True,
              help="Share of characters in lines that repeat an earlier line.")
def filter_(inputs, out, text_field, compression, quiet, part, classifier, alpha, seed, no_rules, min_words, max_words,
            min_mean_word_length, max_mean_word_length, max_symbol_ratio, max_repeated_lines,
            max_repeated_line_chars) -> None:
    """Drop documents by heuristic quality rules (Gopher's), then by GPT-3's classifier and Pareto rule."""
    from gptkit.corpus.filter import Rules, filter_files

    rules = None if no_rules else Rules(min_words, max_words, min_mean_word_length, max_mean_word_length,
                                        max_symbol_ratio, max_repeated_lines, max_repeated_line_chars)
    bar = _Bar(quiet, "filter")
    _finish(bar, filter_files(list(inputs), out, rules, classifier, alpha, seed, part, text_field, compression, bar), out)


@corpus.command()
@_common
@_PART
@click.option("--task", "tasks", multiple=True,
              help="A shipped task's name or a task file (.yaml as `gptkit eval task` reads, .jsonl of examples, or "
                   "text); repeatable. Default: every task gptkit ships.")
@click.option("--cut", "cut_spans", is_flag=True,
              help="Cut each shared 13-gram out with 200 characters on either side, as GPT-3 did, instead of dropping "
                   "the document: the pieces of 200 characters or more are written as records of their own; a document "
                   "cut into more than 10 pieces is dropped.")
def decontaminate(inputs, out, text_field, compression, quiet, part, tasks, cut_spans) -> None:
    """Drop documents sharing a word 13-gram with an evaluation task (lowercased, punctuation removed: GPT-3's rule)."""
    from gptkit.corpus.decontaminate import decontaminate_files

    bar = _Bar(quiet, "decontaminate")
    _finish(bar, decontaminate_files(list(inputs), out, list(tasks), part, text_field, compression, bar, cut_spans), out)


@corpus.command()
@click.option("--reference", multiple=True, required=True, help="The reference corpus (text to keep more of); repeatable.")
@click.option("--raw", multiple=True, required=True, help="The raw corpus to filter; repeatable.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The classifier file to write (.npz).")
@click.option("--max-documents", type=int, default=100_000, show_default=True,
              help="Documents sampled (uniformly) from each side.")
@click.option("--c", "c", type=float, default=100.0, show_default=True,
              help="Inverse regularization strength (scikit-learn's C). GPT-3's (Spark's) was unregularized: a large C "
                   "gives the confident scores its Pareto rule expects.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--text-field", default="text", show_default=True)
def classifier(reference, raw, out, max_documents, c, seed, text_field) -> None:
    """Fit GPT-3's quality classifier: reference vs raw documents, hashed words and word pairs, logistic regression."""
    from gptkit.corpus.quality import fit_files
    from gptkit.run_dir import check_output_file

    check_output_file(out, [*reference, *raw])
    model = fit_files(list(reference), list(raw), out, max_documents, seed, text_field, c)
    accuracy = model.info.get("held_out_accuracy")
    click.echo(f"classifier: {model.info['reference_documents']:,} reference and {model.info['raw_documents']:,} raw "
               f"documents" + (f"; held-out accuracy {accuracy:.3f}" if accuracy is not None else "") + f"; wrote {out}")
