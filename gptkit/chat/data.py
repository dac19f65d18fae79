"""Dialogues in: JSONL (one list of turns per line), a JSON list of dialogues (LCCC), or plain text
(one turn per line, a blank line between dialogues: GPT2-chitchat's train.txt), and the bundled
corpora built by scripts/build_*_dialogues.py."""

from __future__ import annotations

import json
import lzma
import re
from importlib import resources
from pathlib import Path

from gptkit.data.documents import iter_jsonl
from gptkit.errors import GptkitError
from gptkit.tokenizer.wordpiece import CJK

Dialogue = list[str]
BUNDLED = {"shakespeare": "shakespeare_dialogues.jsonl.xz", "tang": "tang_dialogues.jsonl.xz",
           "chatterbot-zh": "chatterbot_zh_dialogues.jsonl.xz"}
# A space between two Chinese characters is no word break (LCCC's turns come word-segmented, "火锅 我 在 重庆").
SPACE_IN_CHINESE = re.compile(f"(?<=[{CJK}]) (?=[{CJK}])")


def normalize_turn(text: str) -> str:
    """Whitespace collapsed to single spaces, none left between Chinese characters: how a turn is
    trained on and how the chat reads what is typed."""
    return SPACE_IN_CHINESE.sub("", " ".join(text.split()))


def _check(turns: object, where: str) -> Dialogue:
    if isinstance(turns, dict) and "dialog" in turns:  # LCCC as Hugging Face datasets exports it
        turns = turns["dialog"]
    if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
        raise GptkitError(f"{where}: each line must be a JSON list of turns (strings), e.g. [\"Hi!\", \"Hello.\"]")
    turns = [normalize_turn(t) for t in turns]
    if any(not t for t in turns):
        raise GptkitError(f"{where}: a turn is empty")
    if len(turns) < 2:
        raise GptkitError(f"{where}: a dialogue needs at least two turns (a source and a response), got {len(turns)}")
    return turns


def parse_jsonl(lines: list[str], name: str) -> list[Dialogue]:
    return [_check(turns, f"{name}:{no}") for no, turns in iter_jsonl(lines, name)]


def parse_json(lines: list[str], name: str) -> list[Dialogue]:
    """A .json file: one JSON list of dialogues, over any number of lines (LCCC's LCCC-base_train.json),
    or else JSON Lines."""
    try:
        whole = json.loads("\n".join(lines))
    except json.JSONDecodeError:  # JSON Lines: their own errors name the line
        return parse_jsonl(lines, name)
    if isinstance(whole, list) and whole and all(isinstance(d, list | dict) for d in whole):
        return [_check(turns, f"{name}: dialogue {no}") for no, turns in enumerate(whole, 1)]
    return parse_jsonl(lines, name)


def parse_text(lines: list[str], name: str) -> list[Dialogue]:
    dialogues, turns, start = [], [], 1
    for no, line in enumerate([*lines, ""], 1):
        if line.strip():
            if not turns:
                start = no
            turns.append(line)
        elif turns:
            dialogues.append(_check(turns, f"{name}:{start}"))
            turns = []
    return dialogues


def read_dialogues(path: str | Path) -> list[Dialogue]:
    """The dialogues of a file; ``shakespeare``, ``tang`` or ``chatterbot-zh`` name a bundled corpus."""
    if str(path) in BUNDLED and not Path(path).exists():
        return bundled_dialogues(str(path))
    path = Path(path)
    if not path.is_file():
        raise GptkitError(f"dialogue file {path} not found (give a .jsonl or .txt file, or one of: {', '.join(BUNDLED)})")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise GptkitError(f"{path} is not UTF-8 text; give dialogues as .jsonl or plain text") from None
    parse = {".jsonl": parse_jsonl, ".json": parse_json}.get(path.suffix.lower(), parse_text)
    dialogues = parse(lines, str(path))
    if not dialogues:
        raise GptkitError(f"{path} holds no dialogues (only empty lines)")
    return dialogues


def bundled_dialogues(name: str) -> list[Dialogue]:
    data = resources.files("gptkit.chat") / "corpora" / BUNDLED[name]
    with data.open("rb") as raw, lzma.open(raw, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def write_dialogues(path: str | Path, dialogues: list[Dialogue]) -> None:
    """One JSON list per line, xz-compressed when the name ends in .xz."""
    opener = lzma.open if str(path).endswith(".xz") else open
    with opener(path, "wt", encoding="utf-8") as f:
        for turns in dialogues:
            f.write(json.dumps(turns, ensure_ascii=False) + "\n")
