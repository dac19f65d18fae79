"""Build gptkit/chat/corpora/chatterbot_zh_dialogues.jsonl.xz, a small real Chinese chit-chat corpus:
the simplified-Chinese conversations of the ChatterBot corpus (greetings, small talk, simple
questions about AI, food, history, ...), each conversation a dialogue of its turns.

Source: chatterbot-corpus 1.3.3 on PyPI (https://pypi.org/project/chatterbot-corpus/, repository
https://github.com/gunthercox/chatterbot-corpus), BSD-3-Clause, copyright (c) 2017 Gunther Cox; the
licence is reproduced in gptkit/chat/corpora/chatterbot_zh_dialogues.LICENSE.

    pip download --no-deps --no-binary :all: chatterbot-corpus==1.3.3   # sha256 615b5c4c6051...
    tar xzf chatterbot_corpus-1.3.3.tar.gz
    python scripts/build_chatterbot_zh_dialogues.py chatterbot_corpus-1.3.3/chatterbot_corpus/data/chinese
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from gptkit.chat.data import write_dialogues

OUT = Path(__file__).resolve().parents[1] / "gptkit" / "chat" / "corpora" / "chatterbot_zh_dialogues.jsonl.xz"


def conversations(folder: Path) -> list[list[str]]:
    """Every conversation of every category file, in file-name order; turns read as text (BaseLoader:
    an answer such as ``42`` or ``是`` stays the string it is), whitespace collapsed."""
    found = []
    for path in sorted(folder.glob("*.yml")):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
        for turns in data["conversations"]:
            turns = [" ".join(t.split()) for t in turns]
            if len(turns) >= 2 and all(turns):
                found.append(turns)
    return found


def main(folder: str) -> None:
    corpus = conversations(Path(folder))
    write_dialogues(OUT, corpus)
    print(f"wrote {len(corpus)} dialogues, {sum(map(len, corpus))} turns, to {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: python {sys.argv[0]} PATH/TO/chatterbot_corpus/data/chinese")
    main(sys.argv[1])
