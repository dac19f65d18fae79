"""Each DialoGPT filter on crafted pairs: it drops what it should, keeps what it should, and counts."""

import pytest

from gptkit.chat.filters import FilterConfig, Pair, filter_pairs

OFF = dict(urls=False, repeated_words=False, common_words=False, brackets=False, max_words=None)
GOOD = Pair(("How are you today?",), "I am well, and you?")


def only(**on) -> FilterConfig:
    return FilterConfig(**{**OFF, **on})


@pytest.mark.parametrize("cfg, bad, reason", [
    (only(urls=True), Pair(("see https://example.com",), "I will look at it."), "url"),
    (only(urls=True), Pair(("What is it?",), "Go to www.example.org for it."), "url"),
    (only(repeated_words=True), Pair(("Well?",), "It is no no no good."), "repeated word"),
    (only(common_words=True), Pair(("Your name?",), "Bob Smith."), "no common English word"),
    (only(brackets=True), Pair(("Who comes?",), "[Enter the king] He is here."), "bracket"),
    (only(max_words=10), Pair(("one two three four five six",), "seven eight nine ten eleven"), "over 10 words"),
    (only(blocklist=frozenset({"villain"})), Pair(("Thou Villain!",), "Why do you say that?"), "blocklisted word"),
])
def test_each_filter_drops_its_case_and_counts_it(cfg, bad, reason):
    kept, report = filter_pairs([GOOD, bad], cfg)
    assert kept == [GOOD]
    assert report.total == 2 and report.kept == 1 and dict(report.removed) == {reason: 1}
    assert filter_pairs([GOOD, bad], FilterConfig(**OFF))[0] == [GOOD, bad]  # off: kept


def test_repeated_word_needs_three_in_a_row_in_the_target():
    cfg = only(repeated_words=True)
    twice = Pair(("no no no",), "It is very very good.")  # the source may repeat; the target twice only
    spaced = Pair(("Hm?",), "no, it is no, it is no")
    assert filter_pairs([twice, spaced], cfg)[0] == [twice, spaced]


def test_max_words_counts_source_and_target_together():
    pair = Pair(("a b c", "d e f"), "g h i j")  # 10 words
    assert filter_pairs([pair], only(max_words=10))[0] == [pair]
    assert filter_pairs([pair], only(max_words=9))[0] == []


def test_frequent_responses_are_dropped_past_the_limit():
    pairs = [Pair((f"q{i}",), "I don't know.") for i in range(3)] + [Pair(("q",), "I do know.")]
    kept, report = filter_pairs(pairs, only(max_response_count=2))
    assert kept == [pairs[-1]] and report.removed == {"response seen over 2 times": 3}
    assert len(filter_pairs(pairs, only(max_response_count=3))[0]) == 4


def test_report_counts_each_pair_once_under_its_first_reason():
    bad = Pair(("http://x.com",), "[a] b b b")
    _, report = filter_pairs([bad], FilterConfig(common_words=False))
    assert dict(report.removed) == {"url": 1}
    assert report.lines() == ["1 pairs, 0 kept", "  removed 1: url"]


def test_blocklist_file_is_read_lowercased(tmp_path):
    path = tmp_path / "block.txt"
    path.write_text("Villain\n\n  knave \n", encoding="utf-8")
    assert FilterConfig.read_blocklist(path) == {"villain", "knave"}
