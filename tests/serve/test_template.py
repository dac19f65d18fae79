"""Chat templates fit a conversation to the context one way: the oldest messages go first until the
reply has its room; the latest message always stays, leaving the reply less if need be, and only one
that leaves no room at all is refused (a 400 that says so)."""

from __future__ import annotations

import pytest

from gptkit.chat.examples import newest_fitting
from gptkit.serve.schema import ApiError, Message
from gptkit.serve.template import render
from gptkit.tokenizer import Tokenizer

TOKENIZER = Tokenizer.char("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?:'\n")
TURN = "Good morrow, my lord! What news from the court, pray you?"  # 57 characters


def conversation(*texts: str) -> list[Message]:
    roles = ("user", "assistant")
    return [Message(role=roles[i % 2], content=text) for i, text in enumerate(texts)]


def plain_text(prompt) -> str:
    return TOKENIZER.decode(prompt.ids)


def test_the_oldest_pieces_go_first_until_the_reply_has_its_room():
    pieces = [[1] * 5, [2] * 4, [3] * 3, [4] * 2]
    assert newest_fitting(pieces, [0], context=20, reserve=11) == 2  # 3 + 2 + the cue's 1 fit in 9, 4 more not
    assert newest_fitting(pieces, [0], context=20, reserve=5) == 0  # everything fits in 15
    assert newest_fitting(pieces, [], context=20, reserve=18) == 3  # the latest stays, leaving the reply 18


def test_a_long_plain_conversation_keeps_its_newest_lines():
    texts = [f"{i:02} {TURN}"[:20] for i in range(11)]  # lines of 27 tokens (User) and 32 (Assistant)
    prompt = render("plain", TOKENIZER, conversation(*texts), context=128, reserve=40)
    kept = plain_text(prompt).splitlines()
    assert kept == ["Assistant: " + texts[9], "User: " + texts[10], "Assistant:"]  # 69 tokens; one more is 96
    assert prompt.stops == ["\nUser:"]


def test_a_latest_message_too_long_for_the_reply_is_kept_and_leaves_it_less():
    """The newcomer's first message: 74 tokens and 64 for the reply overflow the demo's 128."""
    prompt = render("plain", TOKENIZER, conversation("Hello", "Hi", TURN), context=128, reserve=64)
    assert plain_text(prompt) == f"User: {TURN}\nAssistant:" and len(prompt.ids) == 74


@pytest.mark.parametrize("template", ["plain", "dialogue"])
def test_a_latest_message_that_leaves_no_room_for_a_reply_is_a_400_saying_so(template):
    with pytest.raises(ApiError) as refused:
        render(template, TOKENIZER, conversation("Hello", "a" * 130), context=128, reserve=64)
    error = refused.value.body()["error"]
    assert (refused.value.status, error["param"], error["code"]) == (400, "messages", "context_length_exceeded")
    assert error["message"].startswith("the latest message alone makes a prompt of")


def test_the_dialogue_template_fits_the_same_way_and_names_the_turns_it_kept():
    messages = [Message(role="system", content="Be brief."), *conversation("a " * 30, "b  b", "c")]
    prompt = render("dialogue", TOKENIZER, messages, context=64, reserve=50)
    assert prompt.turns == ["b b", "c"]  # system messages dropped, spaces collapsed
    assert prompt.ids == [*TOKENIZER.encode("b b"), TOKENIZER.eot_id, *TOKENIZER.encode("c"), TOKENIZER.eot_id]


def test_dialogue_turns_are_read_as_training_reads_them():
    """Whitespace collapsed and none between Chinese characters (LCCC-style word segmentation)."""
    tok = Tokenizer.char("你好世界 Hi!")
    prompt = render("dialogue", tok, conversation("你 好，\n世界", "Hi   !"), context=64, reserve=8)
    assert prompt.turns == ["你好，世界", "Hi !"]
