"""Stop strings cut the text exactly, wherever the chunks happen to split it."""

import pytest

from gptkit.serve.text import ChoiceText, StopText
from gptkit.tokenizer import Tokenizer


@pytest.mark.parametrize(("pieces", "out"), [
    (["ab", "cE", "N", "Dzz"], ["ab", "c", "", ""]),  # held back while it could be "END", then cut
    (["x", "q", "E", "ND", "more"], ["", "xq", "", "", ""]),  # "x" might have begun "xy"
    (["hello\n", "Us", "ed"], ["hello", "", "\nUsed"]),  # a held tail that turns out not to be a stop
])
def test_stop_strings_are_cut_exactly_across_pieces(pieces, out):
    stop = StopText(["END", "xy", "\nUser:"])
    assert [stop.push(p) for p in pieces] == out


@pytest.mark.parametrize(("tokens", "reply"), [
    (" \n Good do\n", "Good do\n"),  # the space or newline after the template's "Assistant:" goes
    ("\nUser: no", ""),  # a reply that stops at once
    ("  ", ""),
])
def test_a_chat_reply_starts_at_its_first_text(tokens, reply):
    tokenizer = Tokenizer.char("GodUsern: \n")
    choice = ChoiceText(tokenizer, ["\nUser:"], lstrip=True)
    pieces = [choice.push(t) for t in tokenizer.encode(tokens)] + [choice.flush()]
    assert "".join(pieces) == reply
    completion = ChoiceText(tokenizer, [])  # a completion keeps every character
    assert "".join([completion.push(t) for t in tokenizer.encode(tokens)] + [completion.flush()]) == tokens


def test_text_never_holds_back_past_the_end():
    stop = StopText(["END"])
    assert (stop.push("the EN"), stop.flush(), stop.stopped) == ("the ", "EN", False)


class CountingStr(str):
    """A stop string that counts the prefixes taken of it."""

    prefixes = 0

    def __getitem__(self, key):
        CountingStr.prefixes += 1
        return str.__getitem__(self, key)


def test_a_long_stop_string_costs_a_piece_only_the_prefixes_the_text_can_end_with():
    """Every prefix of a megabyte stop string at each token would stall the event loop, and with it
    every other stream."""
    stop = StopText([CountingStr("x" * 1_000_000)])
    assert (stop.push("ab"), stop.push("cx"), stop.push("d")) == ("ab", "c", "xd")
    assert CountingStr.prefixes <= 3 + 3 + 3
