"""Each filter in English and in Chinese: it cuts the session at the turn it should, keeps what it
should, and the report counts it under its own line."""

import pytest

from gptkit.chat.filters import FilterConfig, filter_sessions, is_cjk, units

OFF = dict(urls=False, repeated_words=False, common_words=False, brackets=False, max_words=None,
           max_response_count=None)
GOOD = {"en": ["How are you today?", "I am well, and you?"], "zh": ["你今天好吗？", "我很好，你呢？"]}


def only(**on) -> FilterConfig:
    return FilterConfig(**{**OFF, **on})


CASES = [  # (language, config, a bad response, the report's line)
    ("en", only(urls=True), "see https://example.com", "url"),
    ("en", only(urls=True), "grab it from ftp://files.example.org", "url"),
    ("en", only(urls=True), "go to www.example.org for it", "url"),
    ("en", only(urls=True), "watch youtu.be/dQw4w9WgXcQ now", "url"),
    ("en", only(urls=True), "it is at bit.ly/3abc", "url"),
    ("en", only(urls=True), "look: i.redd.it/x1y2.jpg", "url"),
    ("en", only(urls=True), "it is on example.com", "url"),
    ("zh", only(urls=True), "看这个https://example.com吧", "url"),
    ("zh", only(urls=True), "视频在youtu.be/abc里", "url"),
    ("zh", only(urls=True), "链接是bit.ly/3abc", "url"),
    ("zh", only(urls=True), "图片i.redd.it/x.jpg", "url"),
    ("zh", only(urls=True), "下载ftp://a.cn/b", "url"),
    ("zh", only(urls=True), "上www.baidu.com看", "url"),
    ("en", only(repeated_words=True), "It is no no no good.", "repeated word (character) 3 times"),
    ("zh", only(repeated_words=True), "哈哈哈，你真好", "repeated word (character) 3 times"),
    ("en", only(common_words=True), "Bob Smith.", "no common word of its language"),
    ("zh", only(common_words=True), "谢谢！", "no common word of its language"),
    ("en", only(brackets=True), "[Enter the king] He is here.", "bracket"),
    ("zh", only(brackets=True), "【转发】我在这里", "bracket"),
    ("en", only(max_words=5), "one two three four five six", "over 5 words (characters in Chinese/Japanese)"),
    ("zh", only(max_words=5), "我今天很高兴", "over 5 words (characters in Chinese/Japanese)"),
    ("en", only(blocklist=frozenset({"bad word"})), "That is a Bad  Word!", "blocklisted phrase"),
    ("zh", only(blocklist=frozenset({"傻瓜"})), "你是傻瓜", "blocklisted phrase"),
    ("en", only(blocked_substrings=frozenset({"damn"})), "Goddamnit, no.", "blocklisted substring"),
    ("zh", only(blocked_substrings=frozenset({"他妈"})), "他妈的真烦", "blocklisted substring"),
]


@pytest.mark.parametrize("lang, cfg, bad, reason", CASES, ids=[f"{c[0]}-{c[3][:12]}-{i}" for i, c in enumerate(CASES)])
def test_each_filter_cuts_its_case_in_both_languages_and_counts_it(lang, cfg, bad, reason):
    good = GOOD[lang]
    kept, report = filter_sessions([good, [*good, bad, "after it"]], cfg)
    assert kept == [good, good]  # the session ends before the bad turn
    assert report.sessions == 2 and report.kept == 2 and dict(report.removed[reason]) == {"sessions": 0, "turns": 2}
    assert filter_sessions([good, [*good, bad]], FilterConfig(**OFF))[0] == [good, [*good, bad]]  # off: kept


@pytest.mark.parametrize("lang, text", [
    ("en", "It is a badword here; the words are bad"),  # a phrase is whole words, in order
    ("zh", "你是傻子瓜"),  # characters in a row
])
def test_phrases_match_whole_units_only(lang, text):
    cfg = only(blocklist=frozenset({"bad word", "傻瓜"}))
    assert filter_sessions([[*GOOD[lang], text]], cfg)[0] == [[*GOOD[lang], text]]


@pytest.mark.parametrize("text", ["e.g. the i.e. part, etc.", "version 2.0 is out", "我们2.5点见", "it is fine.Really"])
def test_url_filter_leaves_abbreviations_and_numbers(text):
    assert filter_sessions([["Hi?", text]], only(urls=True))[0] == [["Hi?", text]]


@pytest.mark.parametrize("lang, title", [("en", "read https://x.com"), ("zh", "看https://x.com")])
def test_a_first_turn_failing_a_filter_drops_the_session(lang, title):
    kept, report = filter_sessions([[title, *GOOD[lang]]], only(urls=True))
    assert kept == [] and dict(report.removed["url"]) == {"sessions": 1, "turns": 3}


@pytest.mark.parametrize("title", ["Bob Smith", "谢谢"])  # response-only filters spare the opening turn
def test_response_filters_spare_the_first_turn(title):
    assert filter_sessions([[title, "I am here."]], only(common_words=True))[0] == [[title, "I am here."]]


@pytest.mark.parametrize("lang, reply", [("en", "I don't  know."), ("zh", "我不知道。")])
def test_frequent_responses_are_cut_past_the_limit(lang, reply):
    sessions = [[f"q{i}", reply] for i in range(3)] + [["q", GOOD[lang][1]]]
    kept, report = filter_sessions(sessions, only(max_response_count=2))
    assert kept == [sessions[-1]] and dict(report.removed["response seen over 2 times"]) == {"sessions": 3, "turns": 6}
    assert len(filter_sessions(sessions, only(max_response_count=3))[0]) == 4


def test_defaults_follow_dialogpt():
    assert FilterConfig().max_response_count == 1000 and FilterConfig().max_words == 200


def test_length_and_repetition_count_words_or_cjk_characters():
    assert units("It's a Test, 你好 world") == ("it's", "a", "test", "你", "好", "world")
    assert is_cjk("你好，今天天气怎么样？") and not is_cjk("Hello, 你")


def test_report_has_a_line_per_filter_and_counts_each_turn_once():
    _, report = filter_sessions([["Hi", "http://x.com [a] b b b"]], FilterConfig(common_words=False))
    assert report.lines()[0] == "1 sessions, 0 kept (0 turns)"
    assert report.lines()[1] == "  removed 1 sessions, 2 turns: url"
    assert len(report.lines()) == 1 + 5  # url, length, repetition, bracket, frequent responses


def test_blocklist_file_is_read_lowercased(tmp_path):
    path = tmp_path / "block.txt"
    path.write_text("Villain\n\n  bad   Word \n傻瓜\n", encoding="utf-8")
    assert FilterConfig.read_list(path) == {"villain", "bad word", "傻瓜"}
