"""GPT-3's quality classifier (Brown et al. 2020, appendix A): a logistic regression on hashed word
features, fit to tell a reference corpus (GPT-3: WebText, Wikipedia, books) from raw crawl; a raw
document is then kept when ``np.random.pareto(alpha) > 1 - score``, alpha = 9, so mostly high-scoring
documents are kept and some low-scoring ones too.

The features are scikit-learn's HashingVectorizer over words and word pairs (GPT-3 used Spark's
HashingTF over words: word pairs are added so that text of real words in a wrong order, which has
the reference's very word counts, still scores low). scikit-learn is needed to fit, not to score:
the fitted weights are saved as a .npz of arrays and plain settings (no pickle), and scoring hashes
the text with the same HashingVectorizer.

The Pareto draw of document i is a fixed function of (seed, i), not of what a process read before,
so a corpus split into any number of parts keeps exactly the same documents. It is Lomax(alpha),
the distribution np.random.pareto draws from: U ** (-1 / alpha) - 1 with U uniform in (0, 1], so
the chance of keeping a document of score s is (2 - s) ** -alpha.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gptkit.corpus.text import _GOLDEN, mix
from gptkit.errors import GptkitError
from gptkit.io import atomic_path

ALPHA = 9.0
FEATURES = {"n_features": 2**20, "ngram_range": [1, 2], "alternate_sign": False, "norm": "l2", "lowercase": True}
CHARS = 20_000  # of a document, read by the classifier (the start of a long one)


def _sklearn():
    try:
        from sklearn.feature_extraction.text import HashingVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise GptkitError("the quality classifier needs scikit-learn: pip install 'gptkit[corpus]'") from None
    return HashingVectorizer, LogisticRegression


def vectorizer(settings: dict = FEATURES):
    HashingVectorizer, _ = _sklearn()
    return HashingVectorizer(n_features=settings["n_features"], ngram_range=tuple(settings["ngram_range"]),
                             alternate_sign=settings["alternate_sign"], norm=settings["norm"],
                             lowercase=settings["lowercase"], dtype=np.float32)


@dataclass
class Classifier:
    coef: np.ndarray  # (n_features,) float32
    intercept: float
    features: dict
    info: dict  # how it was fit: documents, held-out accuracy

    def scores(self, texts: list[str]) -> np.ndarray:
        """The probability, for each text, that it is reference text."""
        x = vectorizer(self.features).transform([t[:CHARS] for t in texts])
        z = x @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))

    def save(self, path: str | Path) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, coef=self.coef, intercept=np.array([self.intercept]),
                                settings=np.array(json.dumps({"features": self.features, "info": self.info})))

    @classmethod
    def load(cls, path: str | Path) -> Classifier:
        _sklearn()  # imported now (seconds), not inside the first batch; and a missing one is said before any work
        try:
            with np.load(path, allow_pickle=False) as z:
                settings = json.loads(str(z["settings"]))
                return cls(z["coef"].astype(np.float32), float(z["intercept"][0]), settings["features"], settings["info"])
        except FileNotFoundError:
            raise GptkitError(f"--classifier {path}: no such file (fit one with `gptkit corpus classifier`)") from None
        except (OSError, KeyError, ValueError) as e:
            raise GptkitError(f"--classifier {path} is not a classifier written by `gptkit corpus classifier` ({e})") from None


def reservoir(texts: Iterable[str], k: int, seed: int) -> list[str]:
    """A uniform sample of ``k`` of ``texts`` (all if fewer), in their order, holding at most k at once."""
    rng, kept = random.Random(seed), []
    for i, text in enumerate(texts):
        if i < k:
            kept.append((i, text[:CHARS]))
        elif (j := rng.randrange(i + 1)) < k:
            kept[j] = (i, text[:CHARS])
    return [t for _, t in sorted(kept)]


C = 100.0  # inverse regularization: GPT-3 used Spark's logistic regression, unregularized by default


def fit(reference: list[str], raw: list[str], seed: int = 0, held_out: float = 0.1, c: float = C) -> Classifier:
    """Fit on ``reference`` (label 1) against ``raw`` (label 0); ``held_out`` of each is kept aside to
    measure accuracy, then the final model is fit on all of it. ``c`` is scikit-learn's C: the
    weaker the regularization, the closer the scores come to 0 and 1, and the Pareto rule (which
    keeps a document of score 0.9 with chance 0.42, of 0.99 with chance 0.91) depends on that."""
    if not c > 0:
        raise GptkitError(f"--c must be above 0, got {c}")
    if not reference or not raw:
        raise GptkitError("the classifier needs documents on both sides: the reference corpus and the raw one")
    _, LogisticRegression = _sklearn()
    vec = vectorizer()
    texts = reference + raw
    y = np.array([1] * len(reference) + [0] * len(raw))
    x = vec.transform(texts)
    rng = np.random.default_rng(seed)
    test = rng.random(len(texts)) < held_out
    info = {"reference_documents": len(reference), "raw_documents": len(raw), "held_out": held_out, "c": c}
    if test.any() and (~test).any() and len(set(y[~test])) == 2:
        model = LogisticRegression(C=c, max_iter=1000, solver="liblinear", random_state=seed).fit(x[~test], y[~test])
        info["held_out_accuracy"] = round(float((model.predict(x[test]) == y[test]).mean()), 4)
    model = LogisticRegression(C=c, max_iter=1000, solver="liblinear", random_state=seed).fit(x, y)
    return Classifier(model.coef_[0].astype(np.float32), float(model.intercept_[0]), dict(FEATURES), info)


def uniforms(indices: np.ndarray, seed: int) -> np.ndarray:
    """A uniform draw in (0, 1] for each document number: a fixed function of (seed, number)."""
    with np.errstate(over="ignore"):
        x = mix(indices.astype(np.uint64) * _GOLDEN + mix(np.array([seed], dtype=np.uint64) + np.uint64(0x7061726574)))
    return ((x >> np.uint64(11)).astype(np.float64) + 1.0) / 2.0**53


def pareto(indices: np.ndarray, seed: int, alpha: float = ALPHA) -> np.ndarray:
    """np.random.pareto(alpha)'s distribution (Lomax), one draw per document number."""
    return uniforms(indices, seed) ** (-1.0 / alpha) - 1.0


def keep(scores: np.ndarray, indices: np.ndarray, seed: int, alpha: float = ALPHA) -> np.ndarray:
    """GPT-3's rule: keep a document iff pareto(alpha) > 1 - score."""
    return pareto(indices, seed, alpha) > 1.0 - scores


def keep_probability(scores: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """P(pareto(alpha) > 1 - s) = (2 - s) ** -alpha."""
    return (2.0 - scores) ** -alpha


def fit_files(reference: list[str], raw: list[str], out: str | Path, max_documents: int = 100_000, seed: int = 0,
              text_field: str = "text", c: float = C) -> Classifier:
    """`gptkit corpus classifier`: fit on a uniform sample of up to ``max_documents`` documents of each
    side (held in memory, ``CHARS`` characters each at most), save it to ``out``."""
    from gptkit.corpus.records import read_records
    from gptkit.data.plan import plan_inputs

    if max_documents < 2:
        raise GptkitError(f"--max-documents must be at least 2, got {max_documents}")
    sides = []
    for i, inputs in enumerate((reference, raw)):
        plan = plan_inputs(list(inputs), text_field)
        sides.append(reservoir((r.text for r in read_records(plan)), max_documents, seed + i))
    model = fit(sides[0], sides[1], seed, c=c)
    model.info.update(reference=list(reference), raw=list(raw), max_documents=max_documents, seed=seed)
    model.save(out)
    return model
