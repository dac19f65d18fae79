"""Long documents cut into segments that encode, one by one, to exactly the ids of the whole.

A cut is made just before a space or line break that follows a character which is not whitespace.
GPT-2's pre-tokenizer, ``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+``,
always ends a piece there: the piece holding the character before the cut (a contraction, letters,
digits or other symbols) can never take in whitespace after it, so it ends at the cut in the whole
text and in the first segment alike; the next piece starts at the cut in both, and the pattern only
ever looks ahead (no look-behind, no anchors), so it matches the rest the same way. BPE merges stay
inside a piece, so the ids are the same. A character vocabulary encodes character by character, so
any cut is safe for it. (Python's ``\\S`` excludes every character Unicode calls White_Space, which
is what the pattern's ``\\s`` matches; the tests check that on every code point.)

Segments bound the memory a document of any size needs, and let workers share one long document.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

SEGMENT_CHARS = 1 << 20
_CUT = re.compile(r"(?<=\S)[\n ]")
_STEP = 4096  # searched backwards in steps, so the cut nearest the end is found without scanning everything


def last_cut(text: str, lo: int, hi: int) -> int:
    """The last position in ``[lo, hi)`` where ``text`` may be cut; -1 if there is none."""
    while hi > lo:
        start = max(lo, hi - _STEP)
        found = [m.start() for m in _CUT.finditer(text, start, hi)]
        if found:
            return found[-1]
        hi = start
    return -1


def segments(pieces: Iterable[str], size: int = SEGMENT_CHARS) -> Iterator[str]:
    """The text of ``pieces`` (a document read in parts), re-cut into segments of about ``size``
    characters at safe cuts. Text that offers no cut for longer than ``size`` stays in one segment."""
    text, start, searched = "", 0, 0  # text[start:] is pending; text[start:searched] holds no cut
    for piece in pieces:
        text, searched, start = text[start:] + piece, searched - start, 0
        while len(text) - start >= size and searched < len(text):
            hi = start + size if searched < start + size else len(text)
            cut = last_cut(text, max(searched, start + 1), hi)
            if cut < 0:
                searched = hi
                continue
            yield text[start:cut]
            start = searched = cut
    if start < len(text):
        yield text[start:]
