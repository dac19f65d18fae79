"""WindowLoader: (x, y) windows that are real slices of the shards, y one ahead of x; a resumable,
seeded sampler; and the unigram baseline."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
import torch

from gptkit.data import (
    Corpus,
    Document,
    WindowLoader,
    prepare,
    read_meta,
    unigram_entropy,
    write_shard,
)
from gptkit.errors import GptkitError
from gptkit.tokenizer import Tokenizer

from .helpers import split_tokens


def make_data_dir(path, splits: dict[str, list[np.ndarray]], vocab_size: int = 1000):
    """A prepared data directory written by hand: known tokens in each shard."""
    path.mkdir(parents=True, exist_ok=True)
    meta = {"format": "gptkit-shards", "version": 1, "vocab_size": vocab_size, "eot_id": 0, "dtype": "uint16",
            "splits": {}}
    for split, shards in splits.items():
        names = []
        for i, tokens in enumerate(shards):
            names.append(f"{split}-{i:05d}.bin")
            write_shard(path / names[-1], tokens, vocab_size)
        meta["splits"][split] = {"shards": names, "tokens": int(sum(len(s) for s in shards)),
                                 "documents": len(shards)}
    (path / "meta.json").write_text(json.dumps(meta))
    return path


@pytest.fixture
def data_dir(tmp_path):
    # Distinct token values, so every window identifies where it was cut from.
    return make_data_dir(tmp_path / "data", {"train": [np.arange(0, 300), np.arange(300, 350), np.arange(400, 700)],
                                             "val": [np.arange(700, 800)]})


def shard_arrays(loader):
    return [np.asarray(s, dtype=np.int64) for s in loader.shards]


def test_shapes_and_dtypes(data_dir):
    loader = WindowLoader(data_dir, "train", block_size=16, batch_size=5)
    x, y = loader.next_batch()
    assert x.shape == y.shape == (5, 16)
    assert x.dtype == y.dtype == torch.int64


def test_y_is_x_shifted_by_one_and_windows_are_contiguous_slices(data_dir):
    loader = WindowLoader(data_dir, "train", block_size=16, batch_size=8, seed=3)
    shards = shard_arrays(loader)
    for _ in range(50):
        x, y = loader.next_batch()
        assert torch.equal(x[:, 1:], y[:, :-1])
        for row_x, row_y in zip(x.numpy(), y.numpy()):
            window = np.append(row_x, row_y[-1])
            # The window is a slice of exactly one shard (never straddles two).
            matches = [s for s in shards if window[0] in s]
            assert len(matches) == 1
            start = int(np.flatnonzero(matches[0] == window[0])[0])
            np.testing.assert_array_equal(matches[0][start : start + 17], window)


def test_every_window_can_be_drawn_including_the_last(tmp_path):
    # A shard of 10 tokens holds 10 - 4 = 6 windows of 5 (x of 4 and y of 4).
    data_dir = make_data_dir(tmp_path, {"train": [np.arange(10)]})
    loader = WindowLoader(data_dir, "train", block_size=4, batch_size=64, seed=0)
    assert len(loader) == 6
    firsts = set()
    for _ in range(10):
        x, y = loader.next_batch()
        firsts.update(x[:, 0].tolist())
        assert int(y.max()) <= 9
    assert firsts == set(range(6))  # offsets 0..5: the window ending at the last token is included


def test_a_split_of_exactly_one_window(tmp_path):
    data_dir = make_data_dir(tmp_path, {"train": [np.arange(9)]})
    loader = WindowLoader(data_dir, "train", block_size=8, batch_size=3)
    x, y = loader.next_batch()
    assert x.tolist() == [list(range(8))] * 3
    assert y.tolist() == [list(range(1, 9))] * 3


def test_too_short_split_raises(tmp_path):
    data_dir = make_data_dir(tmp_path, {"train": [np.arange(5), np.arange(8)], "val": []})
    with pytest.raises(GptkitError, match=r"13 tokens, too few for one window of 9"):
        WindowLoader(data_dir, "train", block_size=8, batch_size=1)
    with pytest.raises(GptkitError, match="no 'val' split"):
        WindowLoader(data_dir, "val", block_size=2, batch_size=1)
    with pytest.raises(GptkitError, match="no 'test' split"):
        WindowLoader(data_dir, "test", block_size=2, batch_size=1)


def test_short_shards_are_skipped_but_long_ones_used(tmp_path):
    data_dir = make_data_dir(tmp_path, {"train": [np.arange(3), np.arange(100, 120), np.arange(200, 203)]})
    loader = WindowLoader(data_dir, "train", block_size=8, batch_size=32)
    assert len(loader) == 12
    x, _ = loader.next_batch()
    assert set(x[:, 0].tolist()) <= set(range(100, 112))


def test_windows_are_drawn_from_every_shard_in_proportion(data_dir):
    loader = WindowLoader(data_dir, "train", block_size=16, batch_size=512, seed=0)
    x, _ = loader.next_batch()
    first = x[:, 0].numpy()
    counts = [(first < 300).sum(), ((first >= 300) & (first < 400)).sum(), (first >= 400).sum()]
    assert len(loader) == 284 + 34 + 284
    assert counts[0] > 150 and counts[2] > 150 and 5 < counts[1] < 70


def test_state_dict_resumes_the_exact_same_batches(data_dir):
    loader = WindowLoader(data_dir, "train", block_size=16, batch_size=4, seed=7)
    for _ in range(3):
        loader.next_batch()
    state = json.loads(json.dumps(loader.state_dict()))  # survives a round trip through JSON
    expected = [loader.next_batch() for _ in range(5)]

    resumed = WindowLoader(data_dir, "train", block_size=16, batch_size=4, seed=999)
    resumed.load_state_dict(state)
    for x, y in expected:
        rx, ry = resumed.next_batch()
        assert torch.equal(rx, x) and torch.equal(ry, y)


def test_state_dict_is_a_snapshot(data_dir):
    loader = WindowLoader(data_dir, "train", block_size=16, batch_size=4, seed=7)
    state = loader.state_dict()
    first = loader.next_batch()
    loader.next_batch()
    loader.load_state_dict(state)
    assert torch.equal(loader.next_batch()[0], first[0])


def test_same_seed_same_batches_other_seed_other_batches(data_dir):
    a = WindowLoader(data_dir, "train", block_size=16, batch_size=4, seed=1)
    b = WindowLoader(data_dir, "train", block_size=16, batch_size=4, seed=1)
    c = WindowLoader(data_dir, "train", block_size=16, batch_size=4, seed=2)
    xa, xb, xc = a.next_batch()[0], b.next_batch()[0], c.next_batch()[0]
    assert torch.equal(xa, xb) and not torch.equal(xa, xc)


def test_fixed_batches_are_deterministic_and_leave_the_sampler_alone(data_dir):
    loader = WindowLoader(data_dir, "val", block_size=8, batch_size=4, seed=5)
    state = loader.state_dict()
    first = loader.fixed_batches(3)
    second = loader.fixed_batches(3)
    assert len(first) == 3
    for (x1, y1), (x2, y2) in zip(first, second):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
        assert torch.equal(x1[:, 1:], y1[:, :-1])
    assert not all(torch.equal(first[0][0], b[0]) for b in first[1:])  # three different batches
    other = WindowLoader(data_dir, "val", block_size=8, batch_size=4, seed=99).fixed_batches(3)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, other))  # independent of the loader's seed
    assert not torch.equal(loader.fixed_batches(1, seed=1)[0][0], first[0][0])
    assert loader.state_dict() == state


def test_shard_of_another_vocabulary_is_refused(tmp_path):
    data_dir = make_data_dir(tmp_path, {"train": [np.arange(50)]}, vocab_size=1000)
    write_shard(data_dir / "train-00000.bin", np.arange(50), 500)
    with pytest.raises(GptkitError, match="another vocabulary"):
        WindowLoader(data_dir, "train", block_size=8, batch_size=1)


def test_truncated_shard_is_refused(tmp_path):
    data_dir = make_data_dir(tmp_path, {"train": [np.arange(50)]})
    path = data_dir / "train-00000.bin"
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(GptkitError, match="truncated"):
        WindowLoader(data_dir, "train", block_size=8, batch_size=1)


def test_not_a_prepared_directory(tmp_path):
    with pytest.raises(GptkitError, match="not a prepared data directory"):
        WindowLoader(tmp_path, "train", block_size=8, batch_size=1)
    (tmp_path / "meta.json").write_text("{broken")
    with pytest.raises(GptkitError, match="not valid JSON"):
        read_meta(tmp_path)
    (tmp_path / "meta.json").write_text('{"splits": 3}')
    with pytest.raises(GptkitError, match="corrupt"):
        read_meta(tmp_path)


def test_on_a_real_prepared_corpus(tmp_path):
    tok = Tokenizer.char("abcdefgh \n")
    docs = [("train", Document("abc def\n" * 20, "a")), ("train", Document("gh" * 30, "b")),
            ("val", Document("hgfedcba " * 5, "c"))]
    prepare(docs, tok, tmp_path, shard_tokens=64, progress=False)
    loader = WindowLoader(tmp_path, "train", block_size=32, batch_size=16, seed=0)
    text = tok.decode(np.concatenate([np.asarray(s, dtype=np.int64) for s in loader.shards]).tolist())
    x, y = loader.next_batch()
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        assert tok.decode(row_x + row_y[-1:]) in text


def test_unigram_entropy_by_hand(tmp_path):
    data_dir = make_data_dir(tmp_path, {"train": [np.array([0, 1, 1, 2]), np.array([2, 2])],
                                        "val": [np.array([1, 2, 3])]}, vocab_size=5)
    # Add-one smoothed training counts: 0:1+1, 1:2+1, 2:3+1, 3:0+1, 4:0+1 -> total 11.
    p = {0: 2 / 11, 1: 3 / 11, 2: 4 / 11, 3: 1 / 11, 4: 1 / 11}
    expected = -(math.log(p[1]) + math.log(p[2]) + math.log(p[3])) / 3
    assert unigram_entropy(data_dir) == pytest.approx(expected, rel=1e-12)
    # On its own training split it is the smoothed cross-entropy of the training tokens.
    train = Counter([0, 1, 1, 2, 2, 2])
    expected_train = -sum(n * math.log(p[t]) for t, n in train.items()) / 6
    assert unigram_entropy(data_dir, "train") == pytest.approx(expected_train, rel=1e-12)


def test_unigram_entropy_of_an_empty_split_is_an_error(tmp_path):
    data_dir = make_data_dir(tmp_path, {"train": [np.array([0, 1, 2])], "val": []}, vocab_size=5)
    with pytest.raises(GptkitError, match="no 'val' tokens"):
        unigram_entropy(data_dir)


# ---- several directories as one corpus; damaged shards -------------------------------------------


def prepared_dir(path, text: str, tok: Tokenizer, **kwargs):
    prepare([("train", Document(text, "t")), ("val", Document(text[::-1], "v"))], tok, path, progress=False, **kwargs)
    return path


def test_several_directories_are_one_corpus(tmp_path):
    tok = Tokenizer.char("abcdefgh \n")
    a = prepared_dir(tmp_path / "a", "abc def\n" * 40, tok, shard_tokens=100)
    b = prepared_dir(tmp_path / "b", "gh gh\n" * 50, tok)
    alone = [WindowLoader(d, "train", block_size=16, batch_size=4) for d in (a, b)]
    both = WindowLoader([a, b], "train", block_size=16, batch_size=512, seed=0)
    assert len(both) == sum(len(x) for x in alone) and len(both.shards) == len(alone[0].shards) + 1
    firsts = {tok.decode([t]) for t in both.next_batch()[0][:, 0].tolist()}
    assert {"a", "g"} <= firsts  # windows from both directories
    corpus = Corpus([a, b])
    assert corpus.has("val") and corpus.tokenizer.encode("gh") == tok.encode("gh")
    train, val = (np.concatenate([split_tokens(d, split) for d in (a, b)]) for split in ("train", "val"))
    counts = np.bincount(train, minlength=tok.vocab_size) + 1.0  # one distribution over the whole corpus
    assert unigram_entropy(corpus) == pytest.approx(-np.log(counts / counts.sum())[val].mean())


def test_directories_of_different_tokenizers_are_refused(tmp_path):
    a = prepared_dir(tmp_path / "a", "abc abc", Tokenizer.char("abc "))
    b = prepared_dir(tmp_path / "b", "abd abd", Tokenizer.char("abd "))  # same size, other characters
    c = prepared_dir(tmp_path / "c", "abcd abcd", Tokenizer.char("abcd "))
    with pytest.raises(GptkitError, match=f"{b} was prepared with another tokenizer than {a}"):
        Corpus([a, b])
    with pytest.raises(GptkitError, match="has a vocabulary of 7, .* one of 6"):
        Corpus([a, c])


def test_out_of_vocabulary_ids_are_a_clear_error_naming_the_shard(tmp_path):
    data_dir = make_data_dir(tmp_path, {"train": [np.arange(50)], "val": [np.arange(50)]}, vocab_size=1000)
    path = data_dir / "train-00000.bin"
    tokens = np.arange(50, dtype="<u2")
    tokens[30] = 4000  # a valid header, a corrupt id
    path.write_bytes(path.read_bytes()[:64] + tokens.tobytes())
    loader = WindowLoader(data_dir, "train", block_size=8, batch_size=64, seed=0)
    with pytest.raises(GptkitError, match=r"shard .*train-00000.bin holds token id 4,000, outside the vocabulary of 1,000"):
        loader.next_batch()
    with pytest.raises(GptkitError, match="train-00000.bin holds token id 4,000"):
        unigram_entropy(data_dir)


def test_a_shard_that_disagrees_with_meta_is_refused(tmp_path):
    data_dir = prepared_dir(tmp_path / "d", "abc " * 30, Tokenizer.char("abc "))
    meta = json.loads((data_dir / "meta.json").read_text())
    meta["splits"]["train"]["shards"][0]["tokens"] += 1
    (data_dir / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(GptkitError, match=r"holds 121 tokens, meta.json records 122"):
        WindowLoader(data_dir, "train", block_size=8, batch_size=1)


def test_a_meta_json_of_version_1_is_still_read(tmp_path):
    data_dir = make_data_dir(tmp_path, {"train": [np.arange(30)]})  # lists shard names only, as version 1 did
    assert read_meta(data_dir)["splits"]["train"]["shards"] == [{"name": "train-00000.bin"}]
    assert len(WindowLoader(data_dir, "train", block_size=8, batch_size=1)) == 22
