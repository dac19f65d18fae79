"""Build the bundled evaluation tasks (gptkit/eval/tasks/) from the bundled Shakespeare corpus.

Test examples come from the three plays the default pretraining job holds out (Julius Caesar, The
Tempest, Twelfth Night); few-shot examples from plays it trains on. Deterministic (seeded).

    python scripts/build_eval_tasks.py
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from gptkit.data import shakespeare
from gptkit.data.documents import SHAKESPEARE_VALIDATION
from gptkit.data.plays import Speech, speeches

OUT = Path(__file__).resolve().parents[1] / "gptkit" / "eval" / "tasks"
POOL_PLAYS = ("hamlet", "macbeth", "othello", "romeo_and_juliet")
N_TEST, N_POOL = 150, 60
FINAL_WORD = re.compile(r"^(.*\S)\s+([A-Za-z][a-z']{2,})[.,;:!?]*$", re.S)
WORD = re.compile(r"\b[a-z][a-z']{3,}\b")


def plays(names) -> dict[str, tuple[str, list[Speech]]]:
    works = {w["name"]: w for w in shakespeare()}
    return {n: (works[n]["title"], speeches(works[n]["text"])) for n in names}


def nextline(title: str, play: list[Speech], rng: random.Random) -> list[dict]:
    """HellaSwag-style: two lines of a speech, then pick the true third line among four."""
    all_lines = [line for s in play for line in s.lines if len(line) > 15]
    out = []
    for s in play:
        if len(s.lines) >= 3 and len(s.lines[2]) > 15:
            choices = [s.lines[2], *rng.sample([x for x in all_lines if x != s.lines[2]], 3)]
            rng.shuffle(choices)
            out.append({"context": f"{s.speaker.upper()}.\n{s.lines[0]}\n{s.lines[1]}", "choices": choices,
                        "answer": choices.index(s.lines[2])})
    return out


def lastword(title: str, play: list[Speech], rng: random.Random) -> list[dict]:
    """LAMBADA-style: a speech whose final word already occurred in it; predict that word."""
    out = []
    for s in play:
        match = FINAL_WORD.match(s.text)
        if match and 60 <= len(s.text) <= 400 and match.group(2).lower() in match.group(1).lower().split():
            out.append({"context": match.group(1), "answer": match.group(2)})
    return out


def cloze(title: str, play: list[Speech], rng: random.Random) -> list[dict]:
    """Children's-Book-Test-style: a word of the speech's last line blanked; ten candidate words from
    the speech; each choice is the line with one candidate filled in."""
    out = []
    for s in play:
        if len(s.lines) < 4:
            continue
        context, query = "\n".join(s.lines[:-1]), s.lines[-1]
        in_query = [w for w in WORD.findall(query.lower()) if w in context.lower()]
        candidates = sorted(set(WORD.findall(context.lower())))
        if not in_query or len(candidates) < 10:
            continue
        target = in_query[0]
        options = [target, *rng.sample([c for c in candidates if c != target], 9)]
        rng.shuffle(options)
        pattern = re.compile(rf"\b{re.escape(target)}\b", re.I)
        choices = [pattern.sub(lambda m, o=o: o.capitalize() if m.group(0)[0].isupper() else o, query, count=1)
                   for o in options]
        out.append({"context": f"{s.speaker.upper()}.\n{context}", "choices": choices, "answer": options.index(target)})
    return out


def verse(title: str, play: list[Speech], rng: random.Random) -> list[dict]:
    """Prompted generation: continue a line of verse with the next one (scored with ROUGE)."""
    return [{"line": s.lines[i], "answer": s.lines[i + 1]} for s in play for i in range(len(s.lines) - 1)
            if len(s.lines[i]) > 25 and len(s.lines[i + 1]) > 25]


def whichplay(title: str, play: list[Speech], rng: random.Random) -> list[dict]:
    """Question answering with `Q: ... A:`: which play is a line from?"""
    return [{"speaker": s.speaker.title(), "line": s.lines[0], "answer": title}
            for s in play if 25 < len(s.lines[0]) < 70]


TASKS = {
    "shakespeare-nextline": (nextline, {"type": "choice", "description": "Which line comes next?",
                                        "prompt": "{context}\n", "answer_prefix": "", "metrics": ["acc", "acc_norm"]}),
    "shakespeare-lastword": (lastword, {"type": "last_word", "prompt": "{context}", "metrics": ["acc", "ppl"]}),
    "shakespeare-cloze": (cloze, {"type": "choice", "prompt": "{context}\n", "answer_prefix": "",
                                  "metrics": ["acc", "acc_norm"]}),
    "shakespeare-verse": (verse, {"type": "generate", "prompt": "{line}\n", "answer_prefix": "", "stop": ["\n"],
                                  "max_new_tokens": 60, "metrics": ["rouge1", "rouge2", "rougeL", "f1"]}),
    "shakespeare-whichplay": (whichplay, {"type": "generate", "prompt": "Q: In which play does {speaker} say \"{line}\"?\nA:",
                                          "stop": ["\n"], "max_new_tokens": 30, "metrics": ["exact_match", "f1"]}),
}


def sample(builder, names, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    examples = [ex for title, play in plays(names).values() for ex in builder(title, play, rng)]
    return sorted(rng.sample(examples, min(n, len(examples))), key=json.dumps)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (builder, fields) in TASKS.items():
        stem = name.removeprefix("shakespeare-")
        test, pool = sample(builder, SHAKESPEARE_VALIDATION, N_TEST, 0), sample(builder, POOL_PLAYS, N_POOL, 1)
        for filename, rows in ((f"{stem}.jsonl", test), (f"{stem}_train.jsonl", pool)):
            (OUT / filename).write_text("".join(json.dumps(r) + "\n" for r in rows))
        spec = {"name": name, **fields, "data": f"{stem}.jsonl", "train": f"{stem}_train.jsonl"}
        (OUT / f"{name}.yaml").write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in spec.items()))
        print(f"{name}: {len(test)} test examples, {len(pool)} few-shot examples")


if __name__ == "__main__":
    main()
