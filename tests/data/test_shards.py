"""Token shards: exact round trips in both token widths, a checked header, damage reported clearly."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from gptkit.data.shards import (
    HEADER,
    HEADER_BYTES,
    MAGIC,
    VERSION,
    open_shard,
    read_header,
    token_dtype,
    write_shard,
)
from gptkit.errors import GptkitError


@pytest.mark.parametrize("vocab_size, dtype", [(2, np.uint16), (50257, np.uint16), (65536, np.uint16),
                                                (65537, np.uint32), (100_277, np.uint32), (2**32, np.uint32)])
def test_token_dtype(vocab_size, dtype):
    assert token_dtype(vocab_size) == np.dtype(dtype)


def test_uint16_round_trip(tmp_path):
    path = tmp_path / "s.bin"
    tokens = np.array([0, 1, 50256, 65535, 7, 7], dtype=np.int64)
    write_shard(path, tokens, 65536)
    assert path.stat().st_size == HEADER_BYTES + 2 * len(tokens)
    dtype, n, vocab = read_header(path)
    assert (dtype, n, vocab) == (np.dtype(np.uint16), 6, 65536)
    back = open_shard(path)
    assert back.dtype == np.uint16
    assert back.tolist() == tokens.tolist()


def test_uint32_round_trip(tmp_path):
    path = tmp_path / "s.bin"
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 100_277, size=1000)
    tokens[:3] = [65535, 65536, 100_276]  # ids a uint16 would mangle
    write_shard(path, tokens, 100_277)
    assert path.stat().st_size == HEADER_BYTES + 4 * len(tokens)
    assert read_header(path) == (np.dtype(np.uint32), 1000, 100_277)
    back = open_shard(path)
    assert back.dtype == np.uint32
    np.testing.assert_array_equal(back, tokens)


def test_header_fields_on_disk(tmp_path):
    path = tmp_path / "s.bin"
    write_shard(path, np.arange(10), 300)
    raw = path.read_bytes()
    magic, version, itemsize, n_tokens, vocab_size = struct.unpack_from("<8sIIQQ", raw)
    assert (magic, version, itemsize, n_tokens, vocab_size) == (b"GPTKSHRD", 1, 2, 10, 300)
    assert raw[HEADER.size:HEADER_BYTES] == b"\0" * (HEADER_BYTES - HEADER.size)
    assert np.frombuffer(raw[HEADER_BYTES:], dtype="<u2").tolist() == list(range(10))


def test_empty_shard(tmp_path):
    path = tmp_path / "s.bin"
    write_shard(path, np.zeros(0, dtype=np.int64), 100)
    assert path.stat().st_size == HEADER_BYTES
    assert read_header(path) == (np.dtype(np.uint16), 0, 100)
    back = open_shard(path)
    assert len(back) == 0 and back.dtype == np.uint16


def test_ids_outside_the_vocabulary_are_refused(tmp_path):
    with pytest.raises(ValueError, match="100"):
        write_shard(tmp_path / "a.bin", np.array([1, 100]), 100)
    with pytest.raises(ValueError, match="-1"):
        write_shard(tmp_path / "b.bin", np.array([1, -1]), 100)  # would wrap to 65535 silently
    assert not (tmp_path / "a.bin").exists() and not (tmp_path / "b.bin").exists()


def test_overwrite_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "s.bin"
    write_shard(path, np.arange(5), 10)
    write_shard(path, np.arange(3), 10)
    assert open_shard(path).tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["s.bin"]


@pytest.mark.parametrize("cut", [1, 2, 7])
def test_truncated_tokens_are_detected(tmp_path, cut):
    path = tmp_path / "s.bin"
    write_shard(path, np.arange(100), 1000)
    path.write_bytes(path.read_bytes()[:-cut])
    for reader in (read_header, open_shard):
        with pytest.raises(GptkitError, match="truncated") as e:
            reader(path)
        assert str(path) in str(e.value)


def test_truncated_header_is_detected(tmp_path):
    path = tmp_path / "s.bin"
    write_shard(path, np.arange(100), 1000)
    path.write_bytes(path.read_bytes()[:HEADER_BYTES - 1])
    with pytest.raises(GptkitError, match="truncated"):
        open_shard(path)
    path.write_bytes(b"")
    with pytest.raises(GptkitError, match="truncated"):
        open_shard(path)


def test_trailing_garbage_is_detected(tmp_path):
    path = tmp_path / "s.bin"
    write_shard(path, np.arange(100), 1000)
    path.write_bytes(path.read_bytes() + b"\0\0")
    with pytest.raises(GptkitError, match="corrupt"):
        open_shard(path)


def test_bad_magic(tmp_path):
    path = tmp_path / "s.bin"
    path.write_bytes(b"just some text that happens to be long enough to fill a header.." * 2)
    with pytest.raises(GptkitError, match="bad magic"):
        open_shard(path)


def test_wrong_version(tmp_path):
    path = tmp_path / "s.bin"
    path.write_bytes(HEADER.pack(MAGIC, VERSION + 1, 2, 0, 10).ljust(HEADER_BYTES, b"\0"))
    with pytest.raises(GptkitError, match=f"format version {VERSION + 1}"):
        read_header(path)


def test_corrupt_itemsize(tmp_path):
    path = tmp_path / "s.bin"
    path.write_bytes(HEADER.pack(MAGIC, VERSION, 3, 0, 10).ljust(HEADER_BYTES, b"\0"))
    with pytest.raises(GptkitError, match="itemsize 3"):
        read_header(path)


def test_missing_file(tmp_path):
    with pytest.raises(GptkitError, match="cannot read shard"):
        open_shard(tmp_path / "nope.bin")
