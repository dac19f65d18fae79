"""filter: the heuristic rules, GPT-3's classifier (it tells held-out Shakespeare from the same words
shuffled) and its Pareto rule (the keep rate the formula predicts, the same draw in any number of parts)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from gptkit.corpus.filter import Rules, filter_files
from gptkit.corpus.quality import Classifier, fit, keep, keep_probability, pareto, reservoir, uniforms
from gptkit.data import shakespeare

from .synthetic import read_jsonl_lines, write_jsonl

pytest.importorskip("sklearn")

HELD_OUT = {"hamlet", "macbeth", "tempest", "sonnets", "julius_caesar"}


def passages(names: set[str], exclude: bool, size: int = 1500) -> list[str]:
    """The works' text cut into passages of about ``size`` characters, at line breaks."""
    out = []
    for work in shakespeare():
        if (work["name"] in names) == exclude:
            continue
        text, at = work["text"], 0
        while at < len(text) - size // 2:
            end = text.find("\n", at + size)
            end = len(text) if end < 0 else end
            out.append(text[at:end])
            at = end + 1
    return out


def shuffled(texts: list[str], seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for t in texts:
        ws = t.split()
        rng.shuffle(ws)
        out.append(" ".join(ws))
    return out


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    train = reservoir(passages(HELD_OUT, exclude=True), 400, seed=0)
    raw = shuffled(reservoir(passages(HELD_OUT, exclude=True), 400, seed=1), seed=2)
    return fit(train, raw, seed=0)


def test_the_classifier_tells_held_out_reference_text_from_shuffled_words(classifier):
    reference = passages(HELD_OUT, exclude=False)  # works it never saw
    noise = shuffled(reference, seed=3)
    scores = classifier.scores(reference + noise)
    truth = np.array([1] * len(reference) + [0] * len(noise))
    accuracy = ((scores > 0.5) == truth).mean()
    assert len(reference) > 300
    assert accuracy >= 0.9, accuracy
    assert classifier.info["held_out_accuracy"] >= 0.9


def test_the_classifier_saves_and_loads_without_pickle(classifier, tmp_path):
    classifier.save(tmp_path / "c.npz")
    loaded = Classifier.load(tmp_path / "c.npz")
    texts = passages({"sonnets"}, exclude=False)[:20]
    assert np.allclose(loaded.scores(texts), classifier.scores(texts), atol=1e-6)
    assert loaded.info == classifier.info


def test_the_pareto_keep_rate_matches_the_formula_on_a_fixed_score_sample():
    scores = np.random.default_rng(0).beta(2, 2, size=200_000)
    index = np.arange(len(scores))
    kept = keep(scores, index, seed=0)
    expected = keep_probability(scores).mean()  # E[(2 - s) ** -9]
    n = len(scores)
    assert abs(kept.mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / n)
    for s in (0.0, 0.5, 0.9, 1.0):  # per score, against numpy's own pareto draws
        fixed = np.full(100_000, s)
        ours = keep(fixed, np.arange(100_000), seed=1).mean()
        numpy = (np.random.default_rng(2).pareto(9, size=100_000) > 1 - s).mean()
        p = (2 - s) ** -9
        assert abs(ours - p) < 4 * np.sqrt(p * (1 - p) / 100_000) + 1e-9
        assert abs(numpy - p) < 4 * np.sqrt(p * (1 - p) / 100_000) + 1e-9


def test_the_pareto_draw_is_a_fixed_function_of_the_seed_and_the_document():
    index = np.arange(1000, 2000)
    assert np.array_equal(pareto(index, 5), pareto(index, 5))
    assert np.array_equal(pareto(index, 5)[100:200], pareto(index[100:200], 5))
    assert not np.array_equal(pareto(index, 5), pareto(index, 6))
    u = uniforms(np.arange(200_000), 0)
    assert 0 < u.min() and u.max() <= 1 and abs(u.mean() - 0.5) < 0.005


@pytest.mark.parametrize("text, reason", [
    ("word " * 10, "too few words"),
    ("abcdefghijklmnop " * 60, "mean word length"),
    ("a an of it is to " * 20, "mean word length"),
    ("# heading ... " * 30 + "plain words here " * 30, "symbol ratio"),
    ("\n".join(["the same line of text here"] * 40), "repeated lines"),
    ("\n".join(f"line {i} with some ordinary words" for i in range(40)), None),
])
def test_the_rules(text, reason):
    assert Rules().verdict(text) == reason


def test_filter_with_the_classifier_is_deterministic_and_the_same_in_parts(classifier, tmp_path):
    classifier.save(tmp_path / "c.npz")
    reference = passages({"hamlet"}, exclude=False)
    texts = reference + shuffled(reference, seed=4)
    write_jsonl(tmp_path / "in.jsonl", [{"i": i, "text": t} for i, t in enumerate(texts)])
    inputs = [str(tmp_path / "in.jsonl")]
    report = filter_files(inputs, tmp_path / "one", Rules(min_words=5), str(tmp_path / "c.npz"))
    for part in ("1/3", "2/3", "3/3"):
        filter_files(inputs, tmp_path / "three", Rules(min_words=5), str(tmp_path / "c.npz"), part=part)
    one, three = read_jsonl_lines(tmp_path / "one"), read_jsonl_lines(tmp_path / "three")
    assert one == three
    kept = [json.loads(line)["i"] for line in one]
    reference_kept = sum(i < len(reference) for i in kept) / len(reference)
    noise_kept = sum(i >= len(reference) for i in kept) / len(reference)
    assert reference_kept > 3 * noise_kept  # alpha = 9 keeps few of either unless the score is near 1
    extra = report["extra"]
    assert abs(extra["keep_rate"] - extra["expected_keep_rate"]) < 0.05
    whole = json.loads((tmp_path / "three" / "report.json").read_text())
    assert whole["kept"] == report["kept"] and whole["parts"] == 3
