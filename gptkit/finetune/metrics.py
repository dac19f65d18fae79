"""Task metrics in numpy: accuracy and macro-F1 for classes and choices, Pearson and Spearman for scores."""

from __future__ import annotations

import numpy as np


def accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    return float(np.mean(pred == gold))


def macro_f1(pred: np.ndarray, gold: np.ndarray) -> float:
    """Unweighted mean over classes (seen in either array) of F1 = 2 TP / (2 TP + FP + FN)."""
    scores = []
    for c in np.union1d(pred, gold):
        tp = np.sum((pred == c) & (gold == c))
        scores.append(2 * tp / (2 * tp + np.sum((pred == c) & (gold != c)) + np.sum((pred != c) & (gold == c))))
    return float(np.mean(scores))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Linear correlation; 0 when either side is constant (it is undefined there)."""
    x, y = x - x.mean(), y - y.mean()
    denom = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denom) if denom > 0 else 0.0


def ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2)[inverse]


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(ranks(x), ranks(y))


def task_metrics(outputs: np.ndarray, gold: np.ndarray, regression: bool) -> dict[str, float]:
    """outputs: scores (N,) for regression, else probabilities (N, n) whose argmax is the prediction."""
    if regression:
        return {"pearson": pearson(outputs, gold), "spearman": spearman(outputs, gold)}
    pred = outputs.argmax(-1)
    return {"accuracy": accuracy(pred, gold), "macro_f1": macro_f1(pred, gold)}
