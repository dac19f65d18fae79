"""Heuristic quality rules, then (optionally) GPT-3's classifier with its Pareto rule.

The rules and their defaults are Gopher's (Rae et al. 2021, appendix A), the best-documented set of
the kind GPT-2's WebText cleaning points at: a document is dropped, for the first rule it fails, when

- it has fewer than ``min_words`` or more than ``max_words`` words (split on whitespace);
- its mean word length is outside [``min_mean_word_length``, ``max_mean_word_length``] characters;
- its symbol ratio, hash signs and ellipses ("...", "…") per word, is above ``max_symbol_ratio``;
- more than ``max_repeated_lines`` of its non-empty lines repeat an earlier line, or those repeats
  hold more than ``max_repeated_line_chars`` of its characters.

The report counts each rule's removals. Then, with a classifier, a document that passed the rules is
kept by the Pareto rule (gptkit.corpus.quality), and the report gives the scores' spread and the
keep rate the formula predicts beside the one drawn.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gptkit.corpus.quality import ALPHA, Classifier, keep, keep_probability
from gptkit.corpus.records import Record
from gptkit.errors import GptkitError


@dataclass(frozen=True)
class Rules:
    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_ratio: float = 0.1
    max_repeated_lines: float = 0.3
    max_repeated_line_chars: float = 0.2

    def verdict(self, text: str) -> str | None:
        """None if ``text`` passes every rule, else the first it fails."""
        words = text.split()
        n = len(words)
        if n < self.min_words:
            return "too few words"
        if n > self.max_words:
            return "too many words"
        mean = sum(map(len, words)) / n
        if not self.min_mean_word_length <= mean <= self.max_mean_word_length:
            return "mean word length"
        if (text.count("#") + text.count("...") + text.count("\u2026")) / n > self.max_symbol_ratio:
            return "symbol ratio"
        lines = [line.strip() for line in text.splitlines()]
        lines = [line for line in lines if line]
        if lines:
            seen, repeats, repeat_chars = set(), 0, 0
            for line in lines:
                if line in seen:
                    repeats += 1
                    repeat_chars += len(line)
                else:
                    seen.add(line)
            if repeats / len(lines) > self.max_repeated_lines or repeat_chars / len(text) > self.max_repeated_line_chars:
                return "repeated lines"
        return None

    def settings(self) -> dict:
        return asdict(self)


HISTOGRAM = 10  # score bins in the report


def decider(rules: Rules | None, classifier: Classifier | None, seed: int, alpha: float, extra: dict):
    """The step's decide(batch)."""
    extra.setdefault("score_histogram", [0] * HISTOGRAM)
    extra.setdefault("scored", 0)
    extra.setdefault("expected_kept", 0.0)  # the sum over scored documents of their chance to be kept

    def decide(batch: list[Record]) -> list[str | None]:
        verdicts = [rules.verdict(r.text) if rules else None for r in batch]
        if classifier is None:
            return verdicts
        passed = [i for i, v in enumerate(verdicts) if v is None]
        if not passed:
            return verdicts
        scores = classifier.scores([batch[i].text for i in passed])
        kept = keep(scores, np.array([batch[i].index for i in passed]), seed, alpha)
        extra["scored"] += len(passed)
        extra["expected_kept"] += float(keep_probability(scores, alpha).sum())
        bins = np.minimum((scores * HISTOGRAM).astype(int), HISTOGRAM - 1)
        for b, n in zip(*np.unique(bins, return_counts=True)):
            extra["score_histogram"][int(b)] += int(n)
        for i, k in zip(passed, kept):
            if not k:
                verdicts[i] = "classifier (pareto)"
        return verdicts

    return decide




def filter_files(inputs: list[str], out: str | Path, rules: Rules | None = Rules(), classifier: str | None = None,
                 alpha: float = ALPHA, seed: int = 0, part: str = "1/1", text_field: str = "text",
                 compression: str = "none", progress=None) -> dict:
    """`gptkit corpus filter`: the rules, then the classifier's Pareto rule; the report."""
    from gptkit.corpus.step import base_report, check_out, part_lock, part_name, plan_for, run_step, write_report

    if rules is None and classifier is None:
        raise GptkitError("nothing to filter by: give --classifier, or leave the rules on")
    if not alpha > 0:
        raise GptkitError(f"--alpha must be above 0, got {alpha}")
    plan, index = plan_for(inputs, text_field, part)
    out = check_out(out, "filter", inputs, index[1])
    model = Classifier.load(classifier) if classifier else None
    settings = {"rules": rules.settings() if rules else None, "alpha": alpha, "seed": seed,
                "classifier": None if model is None else {"file": str(classifier), "sha256": _digest(classifier),
                                                          **model.info}}
    extra: dict = {}
    with part_lock(out, part_name(index)):
        output, counts = run_step("filter", plan, index, out, decider(rules, model, seed, alpha, extra), settings,
                                  compression, extra, progress)
    if model is not None and counts.extra.get("scored"):
        counts.extra["expected_keep_rate"] = round(counts.extra["expected_kept"] / counts.extra["scored"], 4)
        kept_by_classifier = counts.extra["scored"] - counts.removed.get("classifier (pareto)", 0)
        counts.extra["keep_rate"] = round(kept_by_classifier / counts.extra["scored"], 4)
    report = base_report("filter", plan, index, settings, counts, [output.name])
    write_report(out, "filter", index, report)
    return report


def _digest(path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
