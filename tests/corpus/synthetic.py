"""Corpora with planted duplicates and task overlaps, and what each step must find in them."""

from __future__ import annotations

import json
import random
from pathlib import Path

from gptkit.corpus.text import words

SYLLABLES = ["ka", "lo", "mi", "ra", "te", "su", "no", "ve", "di", "qu", "ph", "an", "or", "el", "is", "um"]


def vocabulary(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    found: set[str] = set()
    while len(found) < n:
        found.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(found)


def document(rng: random.Random, vocab: list[str], lo: int = 150, hi: int = 400) -> str:
    """Sentences of Zipf-distributed words, with punctuation and capitals (which cleaning removes)."""
    weights = [1 / (i + 1) for i in range(len(vocab))]
    n = rng.randint(lo, hi)
    ws = rng.choices(vocab, weights, k=n)
    out, i = [], 0
    while i < n:
        k = rng.randint(5, 15)
        sentence = ws[i:i + k]
        out.append(sentence[0].capitalize() + " " + " ".join(sentence[1:]) + rng.choice([".", "!", "?", ";"]))
        i += k
    return " ".join(out)


def edit(rng: random.Random, text: str, vocab: list[str], rate: float) -> str:
    """An edited copy: each word replaced, deleted, or followed by a new word with chance ``rate`` in all."""
    out = []
    for w in text.split(" "):
        r = rng.random()
        if r < rate / 3:
            out.append(rng.choice(vocab))
        elif r < 2 * rate / 3:
            continue
        elif r < rate:
            out.extend((w, rng.choice(vocab)))
        else:
            out.append(w)
    return " ".join(out)


def shingle_set(text: str, n: int = 5) -> set[tuple[str, ...]]:
    ws = words(text)
    return {tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)} if len(ws) >= n else ({tuple(ws)} if ws else set())


def jaccard(x: str, y: str) -> float:
    a, b = shingle_set(x), shingle_set(y)
    return len(a & b) / len(a | b) if a | b else 1.0


def planted_corpus(n_docs: int, seed: int = 0, exact_share: float = 0.05, near_share: float = 0.1,
                   rates=(0.005, 0.01, 0.02)) -> tuple[list[dict], dict]:
    """Records in input order and the truth: which are planted exact and near copies of which earlier
    record (a copy always comes after its original; its similarity measured with the definition)."""
    rng = random.Random(seed)
    vocab = vocabulary(3000, seed)
    records, truth = [], {"exact": {}, "near": {}, "similarity": {}}
    originals: list[int] = []
    while len(records) < n_docs:
        r = rng.random()
        if originals and r < exact_share:
            src = rng.choice(originals)
            text = records[src]["text"]
            variant = rng.randrange(3)  # as it was, or only its case, spacing or punctuation changed
            text = text.upper() if variant == 1 else text.replace(" ", "  ") if variant == 2 else text
            truth["exact"][len(records)] = src
        elif originals and r < exact_share + near_share:
            src = rng.choice(originals)
            text = edit(rng, records[src]["text"], vocab, rng.choice(rates))
            truth["near"][len(records)] = src
            truth["similarity"][len(records)] = jaccard(records[src]["text"], text)
        else:
            text = document(rng, vocab)
            originals.append(len(records))
        records.append({"id": f"doc-{len(records)}", "text": text, "meta": {"n": len(records)}})
    return records, truth


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def read_jsonl_lines(folder: Path) -> list[str]:
    return [line for p in sorted(folder.glob("*.jsonl")) for line in p.read_text(encoding="utf-8").splitlines()]
