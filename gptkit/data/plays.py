"""Speeches of a play: the Gutenberg texts tag each speech with its speaker's name on a line of its
own (`HAMLET.`, `Ber.`, `First Clown.`), then the lines, then a blank line. Stage directions are in
square brackets. Evaluation tasks and dialogue corpora are built from these speeches."""

from __future__ import annotations

import re
from dataclasses import dataclass

SPEAKER = re.compile(r"^([A-Z][A-Za-z'\- ]{0,30}[A-Za-z])\.$")
HEADINGS = {"ACT", "SCENE", "PERSONS", "DRAMATIS", "EPILOGUE", "PROLOGUE", "FINIS", "THE", "END"}
DIRECTION = re.compile(r"\[[^\]]*\]")


@dataclass
class Speech:
    speaker: str
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def speeches(text: str) -> list[Speech]:
    """Every speech of a play in order; stage directions dropped, speeches left empty skipped."""
    result: list[Speech] = []
    current: Speech | None = None
    previous_blank = True
    for raw in text.splitlines():
        line = DIRECTION.sub("", raw).rstrip()
        match = SPEAKER.match(raw.strip())
        if previous_blank and match and match.group(1).split()[0].upper() not in HEADINGS:
            current = Speech(match.group(1), [])
            result.append(current)
        elif not line.strip():
            if current is not None and current.lines:
                current = None
        elif current is not None:
            current.lines.append(line.strip())
        previous_blank = not raw.strip()
    return [s for s in result if s.lines]
