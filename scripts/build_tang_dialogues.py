"""Build the small Chinese dialogue corpus gptkit/chat/corpora/tang_dialogues.jsonl.xz: each of the
Three Hundred Tang Poems is a "dialogue" whose turns are its verse lines, so a character-level model
learns to answer a line with the next one (the couplet game), exercising the Chinese chat path.

Source: tang300 of Debian's fortunes-zh 2.98 (`apt-get download fortunes-zh`, file
/usr/share/games/fortunes/tang300, terminal colour codes removed): entries separated by ``%``, each
a title line 《…》, an author line 作者：…, then the verses.

    python scripts/build_tang_dialogues.py PATH/TO/tang300.txt
"""

from __future__ import annotations

import sys
from pathlib import Path

from gptkit.chat.data import write_dialogues

OUT = Path(__file__).resolve().parents[1] / "gptkit" / "chat" / "corpora" / "tang_dialogues.jsonl.xz"


def poems(text: str) -> list[list[str]]:
    found = []
    for entry in text.split("\n%"):
        lines = [line.strip() for line in entry.splitlines() if line.strip()]
        verses = [line for line in lines if not line.startswith(("《", "作者", "%"))]
        if len(verses) >= 2:
            found.append(verses)
    return found


def main(source: str) -> None:
    corpus = poems(Path(source).read_text(encoding="utf-8"))
    write_dialogues(OUT, corpus)
    print(f"wrote {len(corpus)} poems, {sum(map(len, corpus))} verse lines, to {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: python {sys.argv[0]} PATH/TO/tang300.txt")
    main(sys.argv[1])
