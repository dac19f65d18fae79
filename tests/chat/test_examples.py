"""Sessions as token examples: turns joined by end-of-text, every response scored once with its history,
the loss mask, reversal, batches."""

import torch

from gptkit.chat.examples import ExampleConfig, build_examples, dialogue_batches, session_windows
from gptkit.model.loss import IGNORE_INDEX
from gptkit.tokenizer import Tokenizer

TOK = Tokenizer.char("abcdefgh你好")
EOT = TOK.eot_id


def scored_text(ids: list[int], labels: list[int]) -> str:
    """The labelled tokens, EOT shown as |: what the loss trains the model to produce."""
    return "".join("|" if t == EOT else TOK.decode([t]) for t in labels if t != IGNORE_INDEX)


def examples_of(turns: list[str], block: int = 64, **cfg) -> list[tuple[str, str]]:
    """(what the model reads, what it is scored on) of each example of one session."""
    return [(TOK.decode(ids), scored_text(ids, labels))
            for ids, labels in build_examples([turns], TOK, ExampleConfig(**cfg), block)[0]]


def test_a_session_that_fits_is_one_example_scoring_every_response():
    assert examples_of(["ab", "c", "你好"]) == [("ab<|endoftext|>c<|endoftext|>你好", "c|你好|")]


def test_max_history_limits_each_response_to_its_last_turns():
    assert [read for read, _ in examples_of(["a", "b", "c", "d"], max_history=2)] == [
        "a<|endoftext|>b<|endoftext|>c", "b<|endoftext|>c<|endoftext|>d"]
    assert [scored for _, scored in examples_of(["a", "b", "c", "d"], max_history=1)] == ["b|", "c|", "d|"]


def test_every_response_is_scored_exactly_once_with_as_much_history_as_fits():
    for max_history in (0, 1, 2, 3):
        for block in (3, 5, 8, 40):
            lengths = [2, 3, 2, 4, 2, 2, 5]
            scored = []
            for start, end, first in session_windows(lengths, max_history, block):
                if start < end:
                    assert sum(lengths[start:end]) <= block + 1 and start < first
                    assert not max_history or end - 1 - start <= max_history
                scored += range(first, end) if start < end else [first]
            assert scored == list(range(1, len(lengths)))


def test_loss_on_all_turns_scores_every_turn():
    assert examples_of(["ab", "c", "d"], loss_on_all_turns=True)[0][1] == "b|c|d|"  # the first token has no context


def test_reversed_sessions_read_from_the_last_turn_and_score_the_earlier_ones():
    assert examples_of(["ab", "c", "d"], reverse=True) == [("d<|endoftext|>c<|endoftext|>ab", "c|ab|")]


def test_long_histories_lose_their_oldest_turns_and_too_long_responses_are_counted():
    examples, too_long = build_examples([["aaaa", "bb", "cc"], ["a", "hhhhhhhhhh"]], TOK, ExampleConfig(), block_size=6)
    assert too_long == 2 and len(examples) == 1  # "bb" after "aaaa" and the long reply do not fit
    assert TOK.decode(examples[0][0]) == "bb<|endoftext|>cc"


def test_batches_pad_on_the_right_ignore_padding_and_resume_exactly():
    examples = build_examples([["ab", "c", "defg"], ["a", "b"]], TOK, ExampleConfig(), 64)[0]
    source = dialogue_batches(examples, batch_size=2, pad_id=EOT, seed=3)
    x, y = source.next_batch()
    assert x.shape == y.shape and x.shape[0] == 2
    for row in range(2):  # each row is one example, padded with end-of-text, its padding's labels ignored
        assert any(x[row, : len(ids)].tolist() == ids and (x[row, len(ids):] == EOT).all()
                   and y[row, : len(labels)].tolist() == labels and (y[row, len(labels):] == IGNORE_INDEX).all()
                   for ids, labels in examples)
    state = source.state_dict()
    expected = [source.next_batch() for _ in range(3)]
    again = dialogue_batches(examples, batch_size=2, pad_id=EOT, seed=3)
    again.load_state_dict(state)
    for (ex, ey), (ax, ay) in zip(expected, [again.next_batch() for _ in range(3)]):
        assert torch.equal(ex, ax) and torch.equal(ey, ay)
