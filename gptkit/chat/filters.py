"""DialoGPT's data filters, each optional; every removed pair is counted under the first filter
that rejected it, so a user sees why their corpus shrank."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gptkit.errors import GptkitError
from gptkit.train_config import DialogueTrainConfig

# The 50 most common English words (Oxford English Corpus). A response with none of them is
# usually not a sentence: a name, a number, a list, a fragment.
COMMON_WORDS = frozenset("""the be to of and a in that have i it for not on with he as you do at this but his by
from they we say her she or an will my one all would there their what so up out if about who get which go me""".split())
URL = re.compile(r"https?://|www\.|\b\w+\.(com|org|net|io)\b", re.IGNORECASE)
WORD = re.compile(r"[\w']+")


@dataclass(frozen=True)
class Pair:
    """One training example: the history turns (oldest first) and the response to them."""

    source: tuple[str, ...]
    target: str


@dataclass
class FilterConfig:
    urls: bool = True  # a URL in the source or the target
    repeated_words: bool = True  # a word three times in a row in the target
    common_words: bool = True  # a target with none of the 50 most common English words
    brackets: bool = True  # "[" or "]" in the target (markup, stage directions)
    max_words: int | None = DialogueTrainConfig.max_words  # source + target longer than this
    blocklist: frozenset[str] = frozenset()  # offensive words, in the source or the target
    max_response_count: int | None = None  # responses seen more often than this in the corpus

    @staticmethod
    def read_blocklist(path: str | Path) -> frozenset[str]:
        path = Path(path)
        if not path.is_file():
            raise GptkitError(f"blocklist {path} not found: give a text file with one word per line")
        return frozenset(w.strip().lower() for w in path.read_text(encoding="utf-8").splitlines() if w.strip())


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def has_url(pair: Pair) -> bool:
    return any(URL.search(t) for t in (*pair.source, pair.target))


def has_repeated_word(pair: Pair) -> bool:
    w = words(pair.target)
    return any(w[i] == w[i + 1] == w[i + 2] for i in range(len(w) - 2))


def lacks_common_words(pair: Pair) -> bool:
    return COMMON_WORDS.isdisjoint(words(pair.target))


def has_brackets(pair: Pair) -> bool:
    return "[" in pair.target or "]" in pair.target


def word_count(pair: Pair) -> int:
    return sum(len(words(t)) for t in (*pair.source, pair.target))


def active_filters(cfg: FilterConfig) -> dict[str, Callable[[Pair], bool]]:
    """Filter name -> predicate that is True for a pair to drop."""
    checks: dict[str, Callable[[Pair], bool]] = {}
    if cfg.urls:
        checks["url"] = has_url
    if cfg.repeated_words:
        checks["repeated word"] = has_repeated_word
    if cfg.common_words:
        checks["no common English word"] = lacks_common_words
    if cfg.brackets:
        checks["bracket"] = has_brackets
    if cfg.max_words:
        limit = cfg.max_words
        checks[f"over {limit} words"] = lambda p: word_count(p) > limit
    if cfg.blocklist:
        checks["blocklisted word"] = lambda p: any(not cfg.blocklist.isdisjoint(words(t)) for t in (*p.source, p.target))
    return checks


@dataclass
class FilterReport:
    total: int = 0
    removed: Counter = field(default_factory=Counter)

    @property
    def kept(self) -> int:
        return self.total - sum(self.removed.values())

    def lines(self) -> list[str]:
        out = [f"{self.total:,} pairs, {self.kept:,} kept"]
        out += [f"  removed {n:,}: {name}" for name, n in self.removed.most_common()]
        return out


def filter_pairs(pairs: list[Pair], cfg: FilterConfig) -> tuple[list[Pair], FilterReport]:
    report = FilterReport(total=len(pairs))
    checks = active_filters(cfg)
    if cfg.max_response_count is not None:
        counts = Counter(" ".join(words(p.target)) for p in pairs)
        limit = cfg.max_response_count
        checks[f"response seen over {limit} times"] = lambda p: counts[" ".join(words(p.target))] > limit
    kept = []
    for pair in pairs:
        reason = next((name for name, drop in checks.items() if drop(pair)), None)
        if reason is None:
            kept.append(pair)
        else:
            report.removed[reason] += 1
    return kept, report
