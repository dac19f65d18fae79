"""Reading dialogues: both formats, the bundled corpora, and clear errors for bad input."""

import pytest

from gptkit.chat.data import bundled_dialogues, read_dialogues
from gptkit.errors import GptkitError


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_and_plain_text_give_the_same_dialogues(tmp_path):
    jsonl = write(tmp_path, "d.jsonl", '["Hi!", "Hello."]\n\n["你好", "你好！", "再见"]\n')
    text = write(tmp_path, "d.txt", "\n\nHi!\n  Hello.  \n\n\n你好\n你好！\n再见\n")
    expected = [["Hi!", "Hello."], ["你好", "你好！", "再见"]]
    assert read_dialogues(jsonl) == expected
    assert read_dialogues(text) == expected


@pytest.mark.parametrize("name, text, fragment", [
    ("empty.txt", "\n  \n\n", "holds no dialogues"),
    ("one.txt", "Hi!\nHello.\n\nAlone here.\n", "one.txt:4: a dialogue needs at least two turns"),
    ("one.jsonl", '["only one"]\n', "needs at least two turns"),
    ("objects.jsonl", '{"text": "Hi"}\n', "objects.jsonl:1: each line must be a JSON list of turns"),
    ("broken.jsonl", '["Hi", "Ho"\n', "broken.jsonl:1: not valid JSON"),
    ("numbers.jsonl", '["Hi", 3]\n', "must be a JSON list of turns"),
])
def test_bad_input_is_a_clear_error(tmp_path, name, text, fragment):
    with pytest.raises(GptkitError, match=fragment.replace("!", r"\!")):
        read_dialogues(write(tmp_path, name, text))


def test_a_binary_or_missing_file_is_a_clear_error(tmp_path):
    binary = tmp_path / "d.txt"
    binary.write_bytes(b"\xff\xfe\x00garbage\x80")
    with pytest.raises(GptkitError, match="not UTF-8"):
        read_dialogues(binary)
    with pytest.raises(GptkitError, match="not found"):
        read_dialogues(tmp_path / "missing.jsonl")


def test_bundled_corpora_are_real_multi_turn_dialogues():
    shakespeare = read_dialogues("shakespeare")
    assert len(shakespeare) > 3000 and all(len(d) >= 2 for d in shakespeare)
    assert not any("[" in t or "]" in t for d in shakespeare for t in d)  # stage directions removed
    assert ["Good night, my lord.", "Good night, sweet Lord Menelaus."] in [d[i:i + 2] for d in shakespeare for i in range(len(d))]
    tang = bundled_dialogues("tang")
    assert len(tang) > 300 and tang[0][0] == "兰叶春葳蕤，桂华秋皎洁。"


def test_gpt2_chitchat_train_txt_with_windows_line_ends(tmp_path):
    """GPT2-chitchat's train.txt: a turn per line, a blank line between dialogues, written with \\r\\n."""
    path = tmp_path / "train.txt"
    path.write_bytes("你好\r\n你好呀\r\n\r\n在干嘛\r\n看书\r\n什么书\r\n".encode())
    assert read_dialogues(path) == [["你好", "你好呀"], ["在干嘛", "看书", "什么书"]]


def test_lccc_json_list_and_hugging_face_lines_lose_the_word_segmentation_spaces(tmp_path):
    """LCCC-base_train.json is one JSON list of dialogues whose turns are segmented into words; the
    Hugging Face copy is a line per dialogue, plain or {"dialog": [...]}. Spaces between Chinese
    characters go, those around Latin words stay."""
    lccc = write(tmp_path, "LCCC-base_train.json",
                 '[\n  [\n    "火锅 我 在 重庆 成都 吃 了 七八 顿 火锅",\n    "哈哈哈哈 ！ 那 我 的 嘴巴 可能 要 烂掉 ！"\n  ],\n'
                 '  [\n    "你 喜欢 Python 吗 ？",\n    "喜欢"\n  ]\n]\n')
    expected = [["火锅我在重庆成都吃了七八顿火锅", "哈哈哈哈！那我的嘴巴可能要烂掉！"], ["你喜欢 Python 吗？", "喜欢"]]
    assert read_dialogues(lccc) == expected
    lines = write(tmp_path, "lccc.jsonl", '{"dialog": ["火锅 我 在 重庆 成都 吃 了 七八 顿 火锅", '
                  '"哈哈哈哈 ！ 那 我 的 嘴巴 可能 要 烂掉 ！"]}\n["你 喜欢 Python 吗 ？", "喜欢"]\n')
    assert read_dialogues(lines) == expected
    one_line = write(tmp_path, "one.json", '["Hi!", "Hello."]\n')
    assert read_dialogues(one_line) == [["Hi!", "Hello."]]


@pytest.mark.parametrize("text, fragment", [
    ('[["你好", 3]]', "dialogues.json: dialogue 1: each line must be a JSON list of turns"),
    ('[["你好"]]', "dialogue 1: a dialogue needs at least two turns"),
    ('{"train": [["你好", "你好"]]}', "dialogues.json:1: each line must be a JSON list of turns"),
])
def test_a_bad_lccc_file_names_the_dialogue(tmp_path, text, fragment):
    with pytest.raises(GptkitError, match=fragment):
        read_dialogues(write(tmp_path, "dialogues.json", text))


def test_bundled_chinese_chit_chat_is_chatterbots_with_its_licence():
    chitchat = read_dialogues("chatterbot-zh")
    assert len(chitchat) == 467 and sum(map(len, chitchat)) == 1019
    assert ["你好", "嗨"] in chitchat and ["什么是ai", "人工智能是工程和科学的分支,致力于构建具有思维的机器。"] in chitchat
    from importlib import resources

    licence = (resources.files("gptkit.chat") / "corpora" / "chatterbot_zh_dialogues.LICENSE").read_text(encoding="utf-8")
    assert "Copyright (c) 2017, Gunther Cox" in licence and "chatterbot-corpus" in licence
