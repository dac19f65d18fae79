"""Metrics for generated answers: exact match and token F1 (SQuAD's normalisation), ROUGE."""

from __future__ import annotations

import re
import string
from collections import Counter
from functools import lru_cache

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces: SQuAD's answer normalisation."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize(prediction) == normalize(reference))


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize(prediction).split(), normalize(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@lru_cache(maxsize=1)
def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


def rouge(prediction: str, reference: str) -> dict[str, float]:
    """ROUGE-1/2/L F-measures from Google's rouge-score (the implementation papers report)."""
    return {name: s.fmeasure for name, s in _rouge().score(reference, prediction).items()}


GENERATION_METRICS = {"exact_match", "f1", "rouge1", "rouge2", "rougeL"}


def generation_scores(prediction: str, reference: str) -> dict[str, float]:
    return {"exact_match": exact_match(prediction, reference), "f1": token_f1(prediction, reference),
            **rouge(prediction, reference)}
