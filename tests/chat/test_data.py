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
