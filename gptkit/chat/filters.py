"""DialoGPT's data filters for any language, applied to turns: a turn that fails one ends its session
before it (in a thread, its whole subtree goes), as a deleted comment does. Words are counted for
space-separated languages and characters for Chinese and Japanese, decided per character, so a
turn mixing both counts each by its own rule. Every removal is counted under the first filter that
rejected the turn, so a user sees why their corpus shrank."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from gptkit.errors import GptkitError
from gptkit.train_config import DialogueTrainConfig

Session = list[str]

# Han, kana and CJK compatibility characters: each is a unit of length (these scripts put no spaces
# between words). Any other run of letters, digits and apostrophes is one word.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
UNIT = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+(?:'[^\W{_CJK}]+)*")
CJK_CHAR = re.compile(f"[{_CJK}]")
LETTER = re.compile(r"[^\W\d_]")

# The 50 most common English words (Oxford English Corpus) and Chinese characters (Jun Da's corpus
# frequencies). A response with none of them is usually not a sentence: a name, a number, a list.
COMMON_WORDS = frozenset("""the be to of and a in that have i it for not on with he as you do at this but his by
from they we say her she or an will my one all would there their what so up out if about who get which go me""".split())
COMMON_CHARACTERS = frozenset("的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之年过发后作里")

# Links: a scheme, www., or a bare domain (youtu.be, bit.ly, i.redd.it, example.com/...). ASCII
# word boundaries, so a link right after a Chinese character is still found.
_TLDS = "com|org|net|edu|gov|io|co|uk|us|de|fr|ru|jp|cn|hk|tw|be|ly|it|me|tv|gl|gg|to|info|xyz"
URL = re.compile(rf"(?:https?|ftp)://|\bwww\.|\b(?:[a-z0-9-]+\.)+(?:{_TLDS})\b(?![.-]\w)", re.IGNORECASE | re.ASCII)
BRACKETS = re.compile(r"[\[\]【】［］]")


@lru_cache(maxsize=256)  # each filter asks for a turn's units in turn
def units(text: str) -> tuple[str, ...]:
    """Words and CJK characters, lowercased: what length, repetition and phrases are counted in."""
    return tuple(UNIT.findall(text.lower()))


def response_key(text: str) -> str:
    """The form under which responses are counted as the same (case and spacing aside)."""
    return " ".join(text.lower().split())


def is_cjk(text: str) -> bool:
    """Chinese or Japanese: more CJK characters than other letters."""
    cjk = len(CJK_CHAR.findall(text))
    return cjk > 0 and cjk >= len(LETTER.findall(text)) - cjk


@dataclass
class FilterConfig:
    urls: bool = True  # a link in any turn
    repeated_words: bool = True  # a response with a word (a CJK character) three times in a row
    common_words: bool = True  # a response with none of the 50 most common words (characters) of its language
    brackets: bool = True  # [ ] 【 】 in a response (markup, stage directions)
    max_words: int | None = DialogueTrainConfig.max_words  # a turn longer than this, in words (CJK characters)
    blocklist: frozenset[str] = frozenset()  # phrases matched as whole words (CJK: as characters), any turn
    blocked_substrings: frozenset[str] = frozenset()  # matched anywhere, inside words too, any turn
    max_response_count: int | None = DialogueTrainConfig.max_response_count  # responses seen more often

    @staticmethod
    def read_list(path: str | Path) -> frozenset[str]:
        """A blocklist file: one phrase or substring a line, matched case-insensitively."""
        path = Path(path)
        if not path.is_file():
            raise GptkitError(f"blocklist {path} not found: give a UTF-8 text file with one phrase per line")
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError:
            raise GptkitError(f"blocklist {path} is not UTF-8 text; save it as UTF-8") from None
        return frozenset(" ".join(w.lower().split()) for w in lines if w.strip())


def filter_config(cfg: DialogueTrainConfig) -> FilterConfig:
    """Which turns the data keeps, from the run's config (``max_words`` 0: no limit). Reads the
    blocklists, so a missing file is an error before anything else."""
    return FilterConfig(urls=cfg.url_filter, repeated_words=cfg.repeat_filter, common_words=cfg.common_word_filter,
                        brackets=cfg.bracket_filter, max_words=cfg.max_words or None,
                        max_response_count=cfg.max_response_count,
                        blocklist=FilterConfig.read_list(cfg.blocklist) if cfg.blocklist else frozenset(),
                        blocked_substrings=FilterConfig.read_list(cfg.blocked_substrings) if cfg.blocked_substrings
                        else frozenset())


def has_url(text: str) -> bool:
    return URL.search(text) is not None


def has_repeated_unit(text: str) -> bool:
    u = units(text)
    return any(u[i] == u[i + 1] == u[i + 2] for i in range(len(u) - 2))


def lacks_common_words(text: str) -> bool:
    if is_cjk(text):
        return COMMON_CHARACTERS.isdisjoint(text)
    return COMMON_WORDS.isdisjoint(units(text))


def has_brackets(text: str) -> bool:
    return BRACKETS.search(text) is not None


def phrase_matcher(phrases: Iterable[str]) -> Callable[[str], bool]:
    """True for a text holding one of ``phrases`` as a run of whole units ("bad word" is in "a bad
    word!", not in "bad wordings"; "傻瓜" is in "你是傻瓜")."""
    wanted = {units(p) for p in phrases} - {()}
    sizes = sorted({len(p) for p in wanted})

    def match(text: str) -> bool:
        u = units(text)
        return any(u[i:i + n] in wanted for n in sizes for i in range(len(u) - n + 1))

    return match


def substring_matcher(substrings: Iterable[str]) -> Callable[[str], bool]:
    pattern = re.compile("|".join(re.escape(s) for s in sorted(substrings)))
    return lambda text: pattern.search(" ".join(text.lower().split())) is not None


@dataclass(frozen=True)
class Check:
    name: str  # the report's words
    drop: Callable[[str], bool]  # True for a turn to remove
    responses_only: bool  # not applied to a session's first turn (a title, an opening line)


def turn_checks(cfg: FilterConfig, too_frequent: Callable[[str], bool] | None = None) -> list[Check]:
    """The active filters in the order they are tried. ``too_frequent`` says whether a response was
    seen more than ``max_response_count`` times; without it that filter is off."""
    checks = []
    if cfg.urls:
        checks.append(Check("url", has_url, False))
    if cfg.blocklist:
        checks.append(Check("blocklisted phrase", phrase_matcher(cfg.blocklist), False))
    if cfg.blocked_substrings:
        checks.append(Check("blocklisted substring", substring_matcher(cfg.blocked_substrings), False))
    if cfg.max_words:
        limit = cfg.max_words
        checks.append(Check(f"over {limit} words (characters in Chinese/Japanese)", lambda t: len(units(t)) > limit, False))
    if cfg.repeated_words:
        checks.append(Check("repeated word (character) 3 times", has_repeated_unit, True))
    if cfg.common_words:
        checks.append(Check("no common word of its language", lacks_common_words, True))
    if cfg.brackets:
        checks.append(Check("bracket", has_brackets, True))
    if cfg.max_response_count is not None and too_frequent is not None:
        checks.append(Check(f"response seen over {cfg.max_response_count:,} times", too_frequent, True))
    return checks


def rejection(text: str, is_response: bool, checks: list[Check]) -> str | None:
    """The name of the first filter that removes this turn, or None."""
    return next((c.name for c in checks if (is_response or not c.responses_only) and c.drop(text)), None)


@dataclass
class FilterReport:
    """What each filter removed: threads (extract only), sessions and turns; every active filter has
    a line, zero or not, so a user sees which ran."""

    sessions: int = 0  # sessions read (train) or written (extract)
    kept: int = 0
    turns: int = 0  # turns kept
    removed: dict[str, Counter] = field(default_factory=dict)
    kinds: tuple[str, ...] = ("sessions", "turns")  # what the lines count; extract adds threads

    def declare(self, names: Iterable[str]) -> None:
        for name in names:
            self.removed.setdefault(name, Counter())

    def count(self, name: str, threads: int = 0, sessions: int = 0, turns: int = 0) -> None:
        counts = {"threads": threads, "sessions": sessions, "turns": turns}
        self.removed.setdefault(name, Counter()).update({k: counts[k] for k in self.kinds})

    def merge(self, other: FilterReport) -> None:
        self.sessions += other.sessions
        self.kept += other.kept
        self.turns += other.turns
        for name, counts in other.removed.items():
            self.removed.setdefault(name, Counter()).update(counts)

    def to_dict(self) -> dict:
        return {"sessions": self.sessions, "kept": self.kept, "turns": self.turns,
                "removed": {name: dict(c) for name, c in self.removed.items()}, "kinds": list(self.kinds)}

    @classmethod
    def from_dict(cls, d: dict) -> FilterReport:
        return cls(d["sessions"], d["kept"], d["turns"], {k: Counter(v) for k, v in d["removed"].items()},
                   tuple(d["kinds"]))

    def lines(self, header: str | None = None) -> list[str]:
        out = [header or f"{self.sessions:,} sessions, {self.kept:,} kept ({self.turns:,} turns)"]
        for name, c in self.removed.items():
            parts = [f"{c[k]:,} {k}" for k in self.kinds]
            out.append(f"  removed {', '.join(parts)}: {name}")
        return out


def filter_sessions(sessions: list[Session], cfg: FilterConfig) -> tuple[list[Session], FilterReport]:
    """Each session up to its first removed turn; one left with fewer than two turns is dropped."""
    counts = Counter(response_key(t) for s in sessions for t in s[1:])
    checks = turn_checks(cfg, lambda t: counts[response_key(t)] > cfg.max_response_count)
    report = FilterReport(sessions=len(sessions))
    report.declare(c.name for c in checks)
    kept = []
    for turns in sessions:
        cut, reason = next(((i, r) for i, t in enumerate(turns) if (r := rejection(t, i > 0, checks))), (len(turns), None))
        if reason is not None:
            report.count(reason, sessions=int(cut < 2), turns=len(turns) - (cut if cut >= 2 else 0))
        if cut >= 2:
            kept.append(turns[:cut])
            report.turns += cut
    report.kept = len(kept)
    return kept, report
