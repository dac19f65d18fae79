"""Pairs and token examples: turns joined by end-of-text, the loss mask, history, reversal, batches."""

import torch

from gptkit.chat.examples import (
    ExampleConfig,
    build_examples,
    dialogue_batches,
    dialogue_pairs,
    encode_pair,
)
from gptkit.chat.filters import Pair
from gptkit.model.loss import IGNORE_INDEX
from gptkit.tokenizer import Tokenizer

TOK = Tokenizer.char("abcdefgh你好")
EOT = TOK.eot_id


def scored_text(ids: list[int], labels: list[int]) -> str:
    """The labelled tokens, EOT shown as |: what the loss trains the model to produce."""
    return "".join("|" if t == EOT else TOK.decode([t]) for t in labels if t != IGNORE_INDEX)


def test_pairs_respect_max_history():
    dialogue = ["a", "b", "c", "d"]
    assert dialogue_pairs([dialogue], 2) == [Pair(("a",), "b"), Pair(("a", "b"), "c"), Pair(("b", "c"), "d")]
    assert dialogue_pairs([dialogue], 1)[-1] == Pair(("c",), "d")


def test_turns_are_joined_by_eot_and_only_the_response_is_scored():
    ids, labels = encode_pair(TOK, Pair(("ab", "c"), "你好"), ExampleConfig())
    assert TOK.decode(ids) == "ab<|endoftext|>c<|endoftext|>你好"  # inputs: all but the last EOT
    assert len(labels) == len(ids)
    assert all(label in (IGNORE_INDEX, target) for label, target in zip(labels, [*ids[1:], EOT]))
    assert scored_text(ids, labels) == "你好|"


def test_loss_on_all_turns_scores_every_turn():
    ids, labels = encode_pair(TOK, Pair(("ab", "c"), "d"), ExampleConfig(loss_on_all_turns=True))
    assert scored_text(ids, labels) == "b|c|d|"  # the first token has nothing before it


def test_reversed_pairs_put_the_response_first_and_score_the_source():
    ids, labels = encode_pair(TOK, Pair(("ab", "c"), "d"), ExampleConfig(reverse=True))
    assert TOK.decode(ids) == "d<|endoftext|>c<|endoftext|>ab"
    assert scored_text(ids, labels) == "c|ab|"


def test_long_histories_lose_their_oldest_turns_and_too_long_pairs_are_counted():
    pairs = [Pair(("aaaa", "bb"), "cc"), Pair(("a",), "hhhhhhhhhh")]
    examples, too_long = build_examples(pairs, TOK, ExampleConfig(), block_size=6)
    assert too_long == 1 and len(examples) == 1
    assert TOK.decode(examples[0][0]) == "bb<|endoftext|>cc"


def test_batches_pad_on_the_right_ignore_padding_and_resume_exactly():
    examples = build_examples(dialogue_pairs([["ab", "c", "defg"], ["a", "b"]], 2), TOK, ExampleConfig(), 64)[0]
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
