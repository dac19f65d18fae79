"""Build the bundled dialogue corpus gptkit/chat/corpora/shakespeare_dialogues.jsonl.xz from the
bundled Shakespeare (gptkit/data/corpora/shakespeare.jsonl.xz): consecutive speeches of a scene are
the turns of a dialogue.

A speech starts at a speaker line (``HAMLET.``, ``Ham.``, ``First Clown.``) after a blank line and
runs to the next one; stage directions in [brackets] are dropped and lines are joined with spaces.
Chat turns are short, so a speech over MAX_WORDS words (a monologue) and a scene heading both end
the dialogue; runs of at least two short speeches are kept.

    python scripts/build_shakespeare_dialogues.py
"""

from __future__ import annotations

import re
from pathlib import Path

from gptkit.chat.data import write_dialogues
from gptkit.data import shakespeare

OUT = Path(__file__).resolve().parents[1] / "gptkit" / "chat" / "corpora" / "shakespeare_dialogues.jsonl.xz"
MAX_WORDS = 25
SPEAKER = re.compile(r"[A-Z][A-Za-z'&\- ]{0,30}\.")
HEADING = re.compile(r"(ACT|SCENE|PROLOGUE|EPILOGUE|INDUCTION)\b")
DIRECTION = re.compile(r"\[[^\]]*\]?|\]")


def speeches(text: str) -> list[str | None]:
    """The play's speeches in order; None marks a scene break."""
    out: list[str | None] = []
    lines = text.splitlines()
    current: list[str] | None = None
    for i, line in enumerate(lines):
        previous_blank = i == 0 or not lines[i - 1].strip()
        if previous_blank and HEADING.match(line):
            out += [" ".join(current)] if current else []
            out.append(None)
            current = None
        elif previous_blank and SPEAKER.fullmatch(line.strip()):
            out += [" ".join(current)] if current else []
            current = []
        elif current is not None and line.strip():
            current.append(line.strip())
    out += [" ".join(current)] if current else []
    return out


def dialogues(text: str) -> list[list[str]]:
    found, run = [], []
    for speech in [*speeches(text), None]:
        speech = " ".join(DIRECTION.sub(" ", speech).split()) if speech is not None else None
        if speech and len(speech.split()) <= MAX_WORDS:
            run.append(speech)
            continue
        if len(run) >= 2:
            found.append(run)
        run = []
    return found


def main() -> None:
    corpus = [d for work in shakespeare() for d in dialogues(work["text"])]
    write_dialogues(OUT, corpus)
    turns = sum(len(d) for d in corpus)
    print(f"wrote {len(corpus):,} dialogues, {turns:,} turns, to {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
