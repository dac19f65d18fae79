"""Weighted mixtures (`--data DIR:WEIGHT`): batches drawn by weight whatever the corpora's sizes,
the epochs each corpus received, an exact resume, and the ranks' disjoint rows under torchrun."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gptkit.checkpoint import load_training_state
from gptkit.cli.main import cli
from gptkit.data import Document, MixtureLoader, WindowLoader, prepare, unigram_entropy
from gptkit.data.loader import assign_rows
from gptkit.errors import GptkitError
from gptkit.tokenizer import Tokenizer
from gptkit.train import TrainConfig, pretrain
from gptkit.train.plot import read_metrics
from gptkit.train_config import parse_data

from .test_loader import make_data_dir, prepared_dir

BLOCK = 8


@pytest.fixture
def corpora(tmp_path):
    """A big corpus (ids 0-999) and a small one (ids 1000-1099): each window says where it came from."""
    big = make_data_dir(tmp_path / "big", {"train": [np.arange(0, 1000)], "val": [np.arange(0, 50)]}, vocab_size=2000)
    small = make_data_dir(tmp_path / "small", {"train": [np.arange(1000, 1100)], "val": [np.arange(1000, 1050)]},
                          vocab_size=2000)
    for d in (big, small):
        Tokenizer.char("ab").save(d)  # one tokenizer for both, as prepare would have saved
    return str(big), str(small)


def small_share(x: torch.Tensor) -> float:
    return float((x[:, 0] >= 1000).float().mean())


def test_token_shares_follow_the_weights_not_the_sizes(corpora):
    # The small corpus holds 1/11 of the tokens and is drawn 40% of the time.
    loader = MixtureLoader(corpora, [0.6, 0.4], "train", BLOCK, batch_size=5, seed=0)
    xs = torch.cat([loader.next_batch()[0] for _ in range(1000)])
    assert abs(small_share(xs) - 0.4) < 0.02
    assert abs(small_share(xs[:5]) - 0.4) < 0.02  # exact at every step, not only on average
    epochs = loader.epochs()  # GPT-3's Table 2.2: one corpus seen less than once, the other many times
    assert epochs[corpora[0]] == pytest.approx(3000 * BLOCK / 1000) and epochs[corpora[1]] == pytest.approx(2000 * BLOCK / 100)


@pytest.mark.parametrize("weights", [[0.9, 0.1], [1, 3]])
def test_shares_over_odd_weights_and_batches(corpora, weights):
    loader = MixtureLoader(corpora, weights, "train", BLOCK, batch_size=3, seed=1)
    xs = torch.cat([loader.next_batch()[0] for _ in range(300)])
    assert abs(small_share(xs) - weights[1] / sum(weights)) < 0.02


def test_rows_go_to_the_corpus_furthest_behind_its_share():
    drawn = np.zeros(3, dtype=np.int64)
    assert assign_rows(np.array([0.5, 0.25, 0.25]), drawn, 8).tolist() == [0, 1, 2, 0, 0, 1, 2, 0]
    assert drawn.tolist() == [4, 2, 2]


def test_windows_are_real_slices_of_their_corpus(corpora):
    loader = MixtureLoader(corpora, [1, 1], "train", BLOCK, batch_size=16, seed=2)
    x, y = loader.next_batch()
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(y[:, -1], x[:, 0] + BLOCK)  # contiguous ids: never straddles the two corpora


def test_resume_continues_the_same_draw(corpora):
    loader = MixtureLoader(corpora, [0.7, 0.3], "train", BLOCK, batch_size=3, seed=7)
    for _ in range(5):
        loader.next_batch()
    state = json.loads(json.dumps(loader.state_dict()))  # as the checkpoint stores it
    expected = [loader.next_batch()[0] for _ in range(20)]
    resumed = MixtureLoader(corpora, [0.7, 0.3], "train", BLOCK, batch_size=3, seed=999)
    resumed.load_state_dict(state)
    assert all(torch.equal(resumed.next_batch()[0], x) for x in expected)
    assert resumed.epochs() == loader.epochs()


def test_a_checkpoint_of_another_mixture_is_refused(corpora):
    one = MixtureLoader(corpora[:1], [1], "train", BLOCK, batch_size=2)
    two = MixtureLoader(corpora, [1, 1], "train", BLOCK, batch_size=2)
    with pytest.raises(GptkitError, match="a mixture of 1 corpora, this run from a mixture of 2"):
        two.load_state_dict(one.state_dict())
    with pytest.raises(GptkitError, match="from one corpus"):
        two.load_state_dict({"bit_generator": two.rng.bit_generator.state})
    plain = WindowLoader(corpora[0], "train", BLOCK, batch_size=2)
    with pytest.raises(GptkitError, match="a weighted mixture of 2 corpora, this run from one corpus"):
        plain.load_state_dict(two.state_dict())


def test_the_ranks_rows_make_up_the_one_process_batch(corpora):
    whole = MixtureLoader(corpora, [0.6, 0.4], "train", BLOCK, batch_size=6, seed=3)
    ranks = [MixtureLoader(corpora, [0.6, 0.4], "train", BLOCK, batch_size=6, seed=3) for _ in range(2)]
    for rank, loader in enumerate(ranks):
        loader.shard(rank, 2)
    for _ in range(4):
        x = whole.next_batch()[0]
        parts = [loader.next_batch()[0] for loader in ranks]
        assert torch.equal(torch.cat(parts), x)
    assert ranks[0].epochs() == ranks[1].epochs() == whole.epochs()  # the whole job's draw, on every rank


def test_corpora_of_different_tokenizers_are_refused(tmp_path):
    a = prepared_dir(tmp_path / "a", "abc abc", Tokenizer.char("abc "))
    b = prepared_dir(tmp_path / "b", "abd abd", Tokenizer.char("abd "))
    with pytest.raises(GptkitError, match="another tokenizer"):
        MixtureLoader([a, b], [1, 1], "train", 2, batch_size=1)


def test_the_unigram_baseline_of_a_mixture_is_weighted_like_its_validation(tmp_path):
    a = make_data_dir(tmp_path / "a", {"train": [np.array([0, 0, 1])], "val": [np.array([0])]}, vocab_size=5)
    b = make_data_dir(tmp_path / "b", {"train": [np.array([2, 2])], "val": [np.array([2, 3])]}, vocab_size=5)
    for d in (a, b):
        Tokenizer.char("ab").save(d)
    # Add-one smoothed unigram distributions, mixed 3:1; each validation split's loss, averaged 3:1.
    p = 0.75 * np.array([3, 2, 1, 1, 1]) / 8 + 0.25 * np.array([1, 1, 3, 1, 1]) / 7
    expected = 0.75 * -np.log(p[0]) + 0.25 * -(np.log(p[2]) + np.log(p[3])) / 2
    assert unigram_entropy([a, b], weights=[0.75, 0.25]) == pytest.approx(expected, rel=1e-12)


# ---- --data DIR:WEIGHT ----------------------------------------------------------------------------


def test_weights_are_parsed_and_normalised():
    assert parse_data(["a:3", "b:1"]) == (["a", "b"], [0.75, 0.25])
    assert parse_data(["a", "b"]) == (["a", "b"], None)  # plain directories: one corpus, as before
    assert TrainConfig(data="data/x:0.5").corpora() == (["data/x"], [1.0])
    assert TrainConfig(data=["a:0.6", "b:0.4"]).inputs() == ["a", "b"]


def test_a_directory_with_a_colon_in_its_name(tmp_path):
    odd = tmp_path / "web:2024"
    odd.mkdir()
    assert parse_data([str(odd)]) == ([str(odd)], None)
    assert parse_data([f"{odd}:2"]) == ([str(odd)], [1.0])


@pytest.mark.parametrize("data, message", [
    (["a:0"], "--data a:0: the weight after ':' must be a positive number, e.g. a:0.6"),
    (["a:-1", "b:1"], "must be a positive number"),
    (["a:x"], "must be a positive number"),
    (["a:nan"], "must be a positive number"),
    (["a:0.6", "b"], "--data b has no weight: give every directory a weight"),
    (["a:0.6", "a:0.4"], "--data a is given twice"),
])
def test_bad_weights_are_one_clear_error(data, message):
    with pytest.raises(GptkitError, match=message):
        TrainConfig(data=data).validate()


def test_the_command_line_says_what_is_wrong_in_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["pretrain", "--data", "a:0.6", "--data", "b:heavy", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert result.output == "error: --data b:heavy: the weight after ':' must be a positive number, e.g. b:0.6\n"


# ---- a real run -----------------------------------------------------------------------------------


@pytest.fixture
def char_corpora(tmp_path):
    tok = Tokenizer.char("abcdefgh \n")
    dirs = []
    for name, text in (("ab", "abc abd\n" * 300), ("gh", "gh hg\n" * 30)):
        prepare([("train", Document(text, name)), ("val", Document(text[:200], "v"))], tok, tmp_path / name,
                progress=False)
        dirs.append(str(tmp_path / name))
    return dirs


def mixture_run(dirs, out, **keys) -> TrainConfig:
    return TrainConfig(**{**dict(preset="tiny", data=[f"{dirs[0]}:0.75", f"{dirs[1]}:0.25"], out=str(out),
                                 max_steps=6, batch_size=4, block_size=16, eval_every=0, eval_batches=1,
                                 save_every=3, sample_tokens=0, log_every=1), **keys})


def test_a_resumed_run_logs_the_epochs_and_continues_the_same_draw(char_corpora, tmp_path):
    out = tmp_path / "run"
    pretrain(mixture_run(char_corpora, out, max_steps=3), progress=False)
    result = pretrain(mixture_run(char_corpora, out, resume=True), progress=False)
    tokens = [2401, 181]  # each train split: its characters and the end-of-text token before it
    expected = [{d: pytest.approx(step * 4 * w * 16 / n, abs=1e-5) for d, w, n in zip(char_corpora, (0.75, 0.25), tokens)}
                for step in range(1, 7)]
    assert [r["epochs"] for r in read_metrics(out / "metrics.jsonl")] == expected
    assert result.epochs == expected[-1]
    # The checkpoint's position is that of one loader that drew the six batches without a stop.
    alone = MixtureLoader(char_corpora, [0.75, 0.25], "train", 16, batch_size=4, seed=result.trainer.cfg.seed)
    for _ in range(6):
        alone.next_batch()
    assert load_training_state(out)[2]["loader"] == json.loads(json.dumps(alone.state_dict()))
