"""The input formats users have: compressed JSON Lines, parquet (any text column), text with invalid
UTF-8 or Windows line endings; and each kind of damaged input as one clear error naming the file."""

from __future__ import annotations

import gzip
import json
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from gptkit.data import iter_texts, plan_inputs, prepare_files
from gptkit.errors import GptkitError
from gptkit.tokenizer import Tokenizer

from .conftest import ALPHABET
from .helpers import split_documents

TEXTS = ["床前明月光", "line one\nline two", "third", "fourth \u2028 text"]


@pytest.fixture
def char_tok() -> Tokenizer:
    return Tokenizer.char(ALPHABET + "\u2028\ufffd")


def jsonl_bytes(records) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def prepared(tmp_path, char_tok, *inputs, **kwargs) -> list[str]:
    prepare_files([str(p) for p in inputs], char_tok, tmp_path / "out", val_fraction=0, progress=False, **kwargs)
    return split_documents(tmp_path / "out", "train", char_tok)


@pytest.mark.parametrize("suffix, compress", [(".jsonl.gz", gzip.compress),
                                              (".jsonl.zst", lambda b: zstandard.ZstdCompressor().compress(b))])
def test_compressed_json_lines(tmp_path, char_tok, suffix, compress):
    path = tmp_path / f"data{suffix}"
    path.write_bytes(compress(jsonl_bytes([{"text": t} for t in TEXTS]) + b"\n  \n"))
    assert prepared(tmp_path, char_tok, path) == TEXTS
    assert plan_inputs([str(path)]).documents == 4


def test_zst_and_gz_files_are_found_in_a_directory(tmp_path, char_tok):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(jsonl_bytes([{"text": "a"}])))
    (tmp_path / "in" / "b.jsonl.gz").write_bytes(gzip.compress(jsonl_bytes([{"text": "b"}])))
    (tmp_path / "in" / "c.tar.gz").write_bytes(b"\x1f\x8bnot text")  # not a known input: skipped
    assert prepared(tmp_path, char_tok, tmp_path / "in") == ["a", "b"]


def test_parquet_with_a_chosen_text_column(tmp_path, char_tok):
    path = tmp_path / "data.parquet"
    table = pa.table({"id": list(range(4)), "content": TEXTS, "text": ["x"] * 4})
    pq.write_table(table, path, row_group_size=3)
    assert prepared(tmp_path, char_tok, path, text_field="content") == TEXTS
    assert plan_inputs([str(path)], text_field="content").documents == 4
    assert list(iter_texts([str(path)], text_field="content")) == TEXTS


def test_large_string_parquet_columns(tmp_path, char_tok):
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"text": pa.array(TEXTS, type=pa.large_string())}), path)
    assert prepared(tmp_path, char_tok, path) == TEXTS


@pytest.mark.parametrize("table, message", [
    (pa.table({"body": ["a"]}), r"has no column 'text' \(columns: body\); choose one with --text-field"),
    (pa.table({"text": [1, 2]}), r"column 'text' holds int64, not text"),
    (pa.table({"text": ["a", None]}), r"row 1 has no 'text' \(null\)"),
])
def test_bad_parquet_columns(tmp_path, char_tok, table, message):
    pq.write_table(table, tmp_path / "bad.parquet")
    with pytest.raises(GptkitError, match=message):
        prepared(tmp_path, char_tok, tmp_path / "bad.parquet")


@pytest.mark.parametrize("name, data", [("bad.parquet", b"PAR1 not really"), ("bad.jsonl.zst", b"not zstd at all"),
                                        ("bad.jsonl.gz", b"not gzip at all")])
def test_damaged_files_are_one_clear_error(tmp_path, char_tok, name, data):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(GptkitError, match=f"cannot read .*{name}"):
        prepared(tmp_path, char_tok, tmp_path / name)


def test_a_truncated_compressed_file(tmp_path, char_tok):
    data = zstandard.ZstdCompressor().compress(jsonl_bytes([{"text": "x" * 5000}] * 20))
    (tmp_path / "cut.jsonl.zst").write_bytes(data[: len(data) // 2])
    with pytest.raises(GptkitError, match="cut.jsonl.zst"):
        prepared(tmp_path, char_tok, tmp_path / "cut.jsonl.zst")


@pytest.mark.parametrize("name, compress", [("end.jsonl.zst", zstandard.ZstdCompressor().compress),
                                            ("end.jsonl.gz", gzip.compress)])
def test_a_file_cut_inside_its_last_frame_is_refused_and_nothing_written(tmp_path, char_tok, name, compress):
    data = compress(jsonl_bytes([{"text": t} for t in TEXTS]))
    (tmp_path / name).write_bytes(data[:-3])  # whole lines may decode; the stream's end is missing
    with pytest.raises(GptkitError, match=f"cannot read .*{name}"):
        prepared(tmp_path, char_tok, tmp_path / name)
    assert not list((tmp_path / "out").glob("*.bin"))


def test_every_frame_of_a_zst_file_is_read(tmp_path, char_tok):
    frames = b"".join(zstandard.ZstdCompressor().compress(jsonl_bytes([{"text": t}])) for t in TEXTS)
    (tmp_path / "frames.jsonl.zst").write_bytes(frames)
    assert prepared(tmp_path, char_tok, tmp_path / "frames.jsonl.zst") == TEXTS


def test_invalid_utf8_becomes_the_replacement_character(tmp_path, char_tok):
    (tmp_path / "a.txt").write_bytes(b"ok \xff\xfe bytes\r\nnext \xe6\x98")  # also a truncated character at the end
    (tmp_path / "b.jsonl").write_bytes(b'{"text": "caf\xc3"}\n{"text": "lone \\ud800 surrogate"}\n')
    assert prepared(tmp_path, char_tok, tmp_path / "a.txt", tmp_path / "b.jsonl") == [
        "ok \ufffd\ufffd bytes\nnext \ufffd", "caf\ufffd", "lone \ufffd surrogate"]


def test_a_byte_order_mark_before_json_lines(tmp_path, char_tok):
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + jsonl_bytes([{"text": "a"}, {"text": "b"}]))
    assert prepared(tmp_path, char_tok, tmp_path / "bom.jsonl") == ["a", "b"]


def test_parquet_without_pyarrow_says_how_to_get_it(tmp_path, monkeypatch):
    pq.write_table(pa.table({"text": ["a"]}), tmp_path / "x.parquet")
    for module in ("pyarrow", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    with pytest.raises(GptkitError, match=r"reading .*x.parquet needs pyarrow: pip install 'gptkit\[parquet\]'"):
        plan_inputs([str(tmp_path / "x.parquet")])
