import gzip
import logging
import re

import numpy as np
import pytest
import zstandard

from gptkit import GptkitError
from gptkit.finetune.data import (
    DELIMITER,
    EXTRACT,
    START,
    Example,
    Labels,
    Transform,
    add_special_tokens,
    read_examples,
    truncate,
)
from gptkit.finetune.metrics import macro_f1, pearson, spearman
from gptkit.tokenizer import Tokenizer


@pytest.fixture
def tok() -> Tokenizer:
    t = Tokenizer.char("abcdefghijklmnopqrstuvwxyz ")
    add_special_tokens(t)
    return t


def test_jsonl_csv_and_tsv_read_the_same_choice_examples(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"context": "ab", "choices": ["x", "y, z"], "answer": 1}\n\n')
    (tmp_path / "c.csv").write_text('context,choice0,choice1,answer\nab,x,"y, z",1\n')
    (tmp_path / "c.tsv").write_text("context\tchoice0\tchoice1\tanswer\nab\tx\ty, z\t1\n")
    read = [read_examples(tmp_path / f"c.{ext}", "choice") for ext in ("jsonl", "csv", "tsv")]
    assert [(e.first, e.seconds, e.target) for r in read for e in r] == [("ab", ["x", "y, z"], 1)] * 3
    assert read[0][0].where.endswith("c.jsonl:1") and read[1][0].where.endswith("c.csv:2")


def test_the_four_input_transformations(tok):
    enc = lambda s: tok.encode(s)  # noqa: E731
    s, d, e = (tok.special_tokens[t] for t in (START, DELIMITER, EXTRACT))
    def seqs(task, first, seconds):
        return Transform(task, tok, 64).sequences(Example(first, seconds, None, "x"))[0]

    assert seqs("classify", "ab", []) == [[s, *enc("ab"), e]]
    assert seqs("entail", "ab", ["c"]) == [[s, *enc("ab"), d, *enc("c"), e]]
    assert seqs("similarity", "ab", ["c"]) == [[s, *enc("ab"), d, *enc("c"), e], [s, *enc("c"), d, *enc("ab"), e]]
    assert seqs("choice", "ab", ["c", "dd", "e"]) == [[s, *enc("ab"), d, *enc(x), e] for x in ("c", "dd", "e")]


def test_truncation_cuts_the_start_of_the_first_field_then_the_end_of_the_second():
    assert truncate([1, 2, 3, 4], [[5, 6]], 7) == ([1, 2, 3, 4], [[5, 6]], False)
    assert truncate([1, 2, 3, 4], [[5, 6], [7]], 5) == ([3, 4], [[5, 6], [7]], True)
    assert truncate([1, 2], [[5, 6, 7, 8]], 3) == ([], [[5, 6]], True)


def test_long_inputs_are_cut_with_a_warning_that_counts_them(tok, tmp_path, caplog):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "abcdefghij", "label": "x"}\n{"text": "ab", "label": "y"}\n')
    examples = read_examples(path, "classify")
    with caplog.at_level(logging.WARNING, logger="gptkit"):
        items = Transform("classify", tok, 6).encode(examples, Labels.infer("classify", examples), str(path))
    assert "1 of 2 examples in " + str(path) in caplog.text
    assert items[0].sequences[0][1:-1] == tok.encode("ghij") and items[1].target == 1


@pytest.mark.parametrize("content, task, message", [
    ('{"text": "a", "label": "x"}\n{"text": "b"}\n', "classify", "t.jsonl:2: missing column 'label'"),
    ("premise,label\nab,x\n", "entail", "t.csv:2: missing column 'hypothesis'"),
    ("", "classify", "t.jsonl is empty"),
    ('{"context": "a", "choices": ["x", "y"], "answer": 0}\n{"context": "a", "choices": ["x", "y", "z"], "answer": 0}\n',
     "choice", "t.jsonl:2: 3 choices, but"),
    ('{"context": "a", "choices": ["x", "y"], "answer": 2}\n', "choice", "t.jsonl:1: answer 2 is not the index"),
    ('{"a": "a", "b": "b", "score": "high"}\n', "similarity", "t.jsonl:1: column 'score' must be a finite number"),
    ("{oops\n", "classify", "t.jsonl:1: not valid JSON"),
    # nothing is turned into something else: null into "None", 1.5 or true into 1, a string into its letters
    ('{"text": "a", "label": null}\n', "classify", "t.jsonl:1: column 'label' must be a non-empty string or a whole number, got null"),
    ('{"text": null, "label": "x"}\n', "classify", "t.jsonl:1: column 'text' must be a string, got null"),
    ('{"context": "a", "choices": ["x", "y"], "answer": 1.5}\n', "choice", "column 'answer' must be a whole number, got 1.5"),
    ('{"context": "a", "choices": ["x", "y"], "answer": true}\n', "choice", "column 'answer' must be a whole number, got true"),
    ('{"context": "a", "choices": "xyz", "answer": 0}\n', "choice", "column 'choices' must be a list of at least two"),
    ('{"context": "a", "choices": ["x", ""], "answer": 0}\n', "choice", "column 'choices' must be a list of at least two"),
    ('{"a": "a", "b": "b", "score": NaN}\n', "similarity", "t.jsonl:1: column 'score' must be a finite number, got NaN"),
    ("a,b,score\nx,y,0.5\nx,z,inf\n", "similarity", "t.csv:3: column 'score' must be a finite number, got Infinity"),
    ("premise,hypothesis,label\nab,c,\n", "entail", "t.csv:2: column 'label' must be a non-empty string"),
])
def test_bad_files_name_the_file_and_line(tmp_path, content, task, message):
    path = tmp_path / ("t.csv" if content.startswith(("premise", "a,b")) else "t.jsonl")
    path.write_text(content)
    with pytest.raises(GptkitError, match=re.escape(message)):
        read_examples(path, task)


def test_numbers_in_csv_cells_and_whole_number_labels_are_read(tmp_path):
    [ex] = read_examples(_write(tmp_path / "t.csv", "a,b,score\nx,y,0.25\n"), "similarity")
    [choice] = read_examples(_write(tmp_path / "c.tsv", "context\tchoice0\tchoice1\tanswer\nab\tx\ty\t1\n"), "choice")
    [label] = read_examples(_write(tmp_path / "l.jsonl", '{"text": "a", "label": 1}\n'), "classify")
    assert (ex.target, choice.target, label.target) == (0.25, 1, "1")


@pytest.mark.parametrize("task, rows, message", [
    ("classify", '{"text": "a", "label": "x"}\n{"text": "b", "label": "x"}\n{"text": "a", "label": "y"}\n',
     "v.jsonl:3: the same input as line 1"),
    ("similarity", '{"a": "p", "b": "q", "label": "same"}\n{"a": "q", "b": "p", "label": "same"}\n',
     "v.jsonl:2: the same input as line 1"),  # the model reads a pair in both orders
])
def test_a_repeated_input_in_a_scored_file_names_both_lines(tmp_path, task, rows, message):
    path = _write(tmp_path / "v.jsonl", rows)
    assert len(read_examples(path, task)) == rows.count("\n")  # training: a repeat weighs more
    with pytest.raises(GptkitError, match=re.escape(message)):
        read_examples(path, task, scored=True)


@pytest.mark.parametrize("name, data, message", [
    ("t.jsonl.gz", gzip.compress(b'{"text": "a", "label": "x"}\n' * 50, mtime=0)[:-12], "Compressed file ended"),
    ("t.jsonl.zst", zstandard.ZstdCompressor().compress(b'{"text": "a", "label": "x"}\n' * 50)[:-4], "truncated"),
    ("t.jsonl.gz", b"not gzip", "Not a gzipped file"),
    ("t.csv", "text,label\ncaf\xe9,x\n".encode("latin-1"), "is not UTF-8 text"),
], ids=["truncated-gz", "truncated-zst", "not-gzip", "csv-latin1"])  # ids, not bytes: every worker collects the same
def test_damaged_or_foreign_files_are_named(tmp_path, name, data, message):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(GptkitError, match=f"{name}.*{message}"):
        read_examples(tmp_path / name, "classify")


def test_a_label_training_never_saw_is_an_error(tmp_path):
    train = read_examples(_write(tmp_path / "tr.jsonl", '{"text": "a", "label": "x"}\n'), "classify")
    valid = read_examples(_write(tmp_path / "va.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": "z"}\n'), "classify")
    labels = Labels.infer("classify", train)
    with pytest.raises(GptkitError, match=r"va\.jsonl:2: label 'z' never appears in the training file .*tr\.jsonl"):
        [labels.index(ex, tmp_path / "tr.jsonl") for ex in valid]


def _write(path, text):
    path.write_text(text)
    return path


def test_metrics_against_hand_computed_values():
    pred, gold = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1])
    # F1 per class: 0 -> 2/3, 1 -> 2/(2+0+2) = 1/2, 2 -> 0
    assert macro_f1(pred, gold) == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert pearson(np.array([1.0, 2, 3]), np.array([2.0, 4, 6])) == pytest.approx(1.0)
    # ranks with a tie: x -> [1, 2.5, 2.5, 4], y -> [1, 2, 3, 4]
    expected = np.corrcoef([1, 2.5, 2.5, 4], [1, 2, 3, 4])[0, 1]
    assert spearman(np.array([1.0, 5, 5, 9]), np.array([0.1, 0.2, 0.3, 0.4])) == pytest.approx(expected)
