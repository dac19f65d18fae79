"""prepare: text files in, end-of-text-separated token shards out, split into train/val."""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import pytest

from gptkit.data import Document, iter_texts, plan_inputs, prepare, prepare_files, read_meta
from gptkit.data.plan import validation_flags
from gptkit.errors import GptkitError
from gptkit.tokenizer import EOT, Tokenizer

from .helpers import split_documents, split_tokens


def make_docs(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = ["the", "king", "queen", "speaks", "and", "dies", "明月", "é", "\n", "!"]
    return [f"doc {i}: " + " ".join(rng.choice(words) for _ in range(rng.randint(1, 30))) for i in range(n)]


def write_files(folder, texts, suffix=".txt"):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, text in enumerate(texts):
        path = folder / f"{i:03d}{suffix}"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


# ---- documents and the end-of-text separator ---------------------------------------------------


def test_each_document_is_preceded_by_end_of_text(tmp_path, char_tok):
    docs = [("train", Document("ab", "x")), ("train", Document("", "y")), ("train", Document("c\n", "z")),
            ("val", Document("de", "w"))]
    meta = prepare(docs, char_tok, tmp_path / "out", progress=False)
    eot = char_tok.eot_id
    assert split_tokens(tmp_path / "out", "train").tolist() == [eot, *char_tok.encode("ab"), eot, eot,
                                                                *char_tok.encode("c\n")]
    assert split_tokens(tmp_path / "out", "val").tolist() == [eot, *char_tok.encode("de")]
    assert meta["splits"]["train"]["documents"] == 3 and meta["splits"]["val"]["documents"] == 1


def test_end_of_text_inside_a_document_is_plain_text(tmp_path, char_tok):
    prepare([("train", Document(f"a{EOT}b", "x"))], char_tok, tmp_path, progress=False)
    tokens = split_tokens(tmp_path, "train").tolist()
    assert tokens.count(char_tok.eot_id) == 1 and tokens[0] == char_tok.eot_id
    assert char_tok.decode(tokens[1:]) == f"a{EOT}b"


def test_gpt2_shards_match_the_tokenizer(tmp_path):
    tok = Tokenizer.gpt2()
    texts = ["Hello world", " two  spaces\n", "床前明月光"]
    prepare([("train", Document(t, str(i))) for i, t in enumerate(texts)], tok, tmp_path, progress=False)
    expected = [i for t in texts for i in [50256, *tok.encode(t, allow_special=False)]]
    assert split_tokens(tmp_path, "train").tolist() == expected
    meta = read_meta(tmp_path)
    assert meta["dtype"] == "uint16" and meta["vocab_size"] == 50257 and meta["eot_id"] == 50256
    assert Tokenizer.load(tmp_path).encode("Hello world") == [15496, 995]


def test_meta_json(tmp_path, char_tok):
    docs = [("train", Document("abc", "a")), ("train", Document("de", "b")), ("val", Document("f", "c"))]
    returned = prepare(docs, char_tok, tmp_path, progress=False)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta == returned
    train_sha = hashlib.sha256(np.array([0, *char_tok.encode("abc"), 0, *char_tok.encode("de")], "<u2").tobytes())
    assert meta == {
        "format": "gptkit-shards", "version": 2, "vocab_size": char_tok.vocab_size, "eot_id": char_tok.eot_id,
        "dtype": "uint16",
        "splits": {"train": {"shards": [{"name": "train-00000.bin", "tokens": 7, "sha256": train_sha.hexdigest()}],
                             "tokens": 7, "documents": 2, "bytes": 5},
                   "val": {"shards": [{"name": "val-00000.bin", "tokens": 2, "sha256": meta["splits"]["val"]["shards"][0]["sha256"]}],
                           "tokens": 2, "documents": 1, "bytes": 1}},
    }
    assert read_meta(tmp_path) == meta
    # The tokenizer is saved beside the shards so training and sampling use the same one.
    assert Tokenizer.load(tmp_path).encode("abc") == char_tok.encode("abc")


def test_a_vocabulary_over_65536_writes_uint32(tmp_path):
    text = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 70_000) if not 0xD800 <= c < 0xE000)
    tok = Tokenizer.char(text)
    assert tok.vocab_size > 65536
    last = text[-1]
    prepare([("train", Document(last + "一", "x"))], tok, tmp_path, progress=False)
    assert read_meta(tmp_path)["dtype"] == "uint32"
    assert split_tokens(tmp_path, "train").tolist() == [tok.eot_id, tok.vocab_size - 1, tok.encode("一")[0]]


def test_no_validation_split(tmp_path, char_tok):
    meta = prepare([("train", Document("abc", "a"))], char_tok, tmp_path, progress=False)
    assert meta["splits"]["val"] == {"shards": [], "tokens": 0, "documents": 0, "bytes": 0}


# ---- shards -------------------------------------------------------------------------------------


def test_small_shards_concatenate_to_the_single_shard(tmp_path, char_tok):
    texts = make_docs(40)
    docs = [("val" if i % 5 == 0 else "train", Document(t, str(i))) for i, t in enumerate(texts)]
    one = prepare(docs, char_tok, tmp_path / "one", progress=False)
    many = prepare(docs, char_tok, tmp_path / "many", shard_tokens=100, progress=False)
    assert len(one["splits"]["train"]["shards"]) == 1
    for split in ("train", "val"):
        info = many["splits"][split]
        assert len(info["shards"]) == -(-info["tokens"] // 100) > 2
        assert [s["name"] for s in info["shards"]] == [f"{split}-{i:05d}.bin" for i in range(len(info["shards"]))]
        sizes = [(tmp_path / "many" / s["name"]).stat().st_size for s in info["shards"]]
        assert sizes[:-1] == [64 + 2 * 100] * (len(sizes) - 1)  # every shard but the last is full
        assert info["tokens"] == one["splits"][split]["tokens"]
        assert info["documents"] == one["splits"][split]["documents"]
        np.testing.assert_array_equal(split_tokens(tmp_path / "many", split), split_tokens(tmp_path / "one", split))


def test_two_workers_write_byte_identical_shards(tmp_path):
    tok = Tokenizer.gpt2()
    texts = make_docs(300)
    paths = write_files(tmp_path / "in", texts)
    kwargs = dict(val_fraction=0.1, seed=3, shard_tokens=1000, progress=False)
    m1 = prepare_files([str(tmp_path / "in")], tok, tmp_path / "w1", workers=1, **kwargs)
    m2 = prepare_files([str(tmp_path / "in")], tok, tmp_path / "w2", workers=2, **kwargs)
    assert m1 == m2
    assert len(paths) == 300 and m1["splits"]["train"]["documents"] + m1["splits"]["val"]["documents"] == 300
    names = sorted(p.name for p in (tmp_path / "w1").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "w2").iterdir())
    assert len([n for n in names if n.endswith(".bin")]) > 2
    for name in names:
        assert (tmp_path / "w1" / name).read_bytes() == (tmp_path / "w2" / name).read_bytes(), name


# ---- inputs: files, directories, globs, .jsonl ---------------------------------------------------


def test_plain_files(tmp_path, char_tok):
    a, b = write_files(tmp_path / "in", ["first file\n", "second file\n"])
    meta = prepare_files([str(a), str(b)], char_tok, tmp_path / "out", val_fraction=0.5, progress=False)
    train = split_documents(tmp_path / "out", "train", char_tok)
    val = split_documents(tmp_path / "out", "val", char_tok)
    assert len(train) == len(val) == 1
    assert sorted(train + val) == ["first file\n", "second file\n"]
    assert meta["splits"]["train"]["documents"] == meta["splits"]["val"]["documents"] == 1


def test_a_directory_is_searched_recursively_for_text_files(tmp_path, char_tok):
    root = tmp_path / "corpus"
    write_files(root, ["one"])
    write_files(root / "sub" / "deeper", ["two", "three"], suffix=".md")
    (root / "README").write_text("four")  # no suffix: text
    (root / "image.png").write_bytes(b"\x89PNG\r\n")  # not text: skipped
    (root / ".DS_Store").write_bytes(b"\0\1binary")  # hidden: skipped
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")  # hidden folder: skipped
    prepare_files([str(root)], char_tok, tmp_path / "out", val_fraction=0, progress=False)
    assert sorted(split_documents(tmp_path / "out", "train", char_tok)) == ["four", "one", "three", "two"]


def test_documents_come_in_a_stable_order(tmp_path, char_tok):
    root = tmp_path / "corpus"
    write_files(root, ["a", "b", "c"])
    prepare_files([str(root)], char_tok, tmp_path / "out", val_fraction=0, progress=False)
    assert split_documents(tmp_path / "out", "train", char_tok) == ["a", "b", "c"]


def test_a_glob(tmp_path, char_tok):
    write_files(tmp_path / "in", ["alpha", "beta"])
    write_files(tmp_path / "in", ["gamma"], suffix=".md")  # 000.md: not matched by *.txt
    prepare_files([str(tmp_path / "in" / "*.txt")], char_tok, tmp_path / "out", val_fraction=0, progress=False)
    assert split_documents(tmp_path / "out", "train", char_tok) == ["alpha", "beta"]
    prepare_files([str(tmp_path / "**" / "*.md")], char_tok, tmp_path / "out2", val_fraction=0, progress=False)
    assert split_documents(tmp_path / "out2", "train", char_tok) == ["gamma"]


def test_jsonl_text_field(tmp_path, char_tok):
    records = [{"text": "床前明月光", "id": 1}, {"text": "line one\nline two"}, {"text": "third"}]
    path = write_jsonl(tmp_path / "data.jsonl", records)
    with path.open("a") as f:
        f.write("\n   \n")  # blank lines are skipped
    meta = prepare_files([str(path)], char_tok, tmp_path / "out", val_fraction=0, progress=False)
    assert split_documents(tmp_path / "out", "train", char_tok) == [r["text"] for r in records]
    assert meta["splits"]["train"]["documents"] == 3


def test_jsonl_documents_are_split_whole(tmp_path, char_tok):
    texts = make_docs(20)
    path = write_jsonl(tmp_path / "data.jsonl", [{"text": t} for t in texts])
    meta = prepare_files([str(path)], char_tok, tmp_path / "out", val_fraction=0.2, progress=False)
    train = split_documents(tmp_path / "out", "train", char_tok)
    val = split_documents(tmp_path / "out", "val", char_tok)
    assert len(val) == 4 and len(train) == 16
    assert sorted(train + val) == sorted(texts)  # every document whole, in exactly one split
    assert [t for t in texts if t in train] == train  # order kept within a split
    assert meta["splits"]["val"]["documents"] == 4


def test_the_split_is_seeded(tmp_path):
    files = write_files(tmp_path / "in", make_docs(30))
    plan = plan_inputs([str(f) for f in files])
    pick = lambda seed: ["".join(d.pieces()) for s, d in plan.split(0.2, seed) if s == "val"]  # noqa: E731
    assert pick(0) == pick(0)
    assert len(pick(0)) == 6
    assert len({tuple(pick(s)) for s in range(5)}) > 1


@pytest.mark.parametrize("n, fraction, n_val", [(2, 0.05, 1), (3, 0.5, 2), (10, 0.99, 9), (10, 0, 0), (10, 0.25, 2)])
def test_validation_document_count(tmp_path, n, fraction, n_val):
    files = write_files(tmp_path / "in", [f"doc{i}" for i in range(n)])
    splits = [s for s, _ in plan_inputs([str(f) for f in files]).split(fraction)]
    assert splits.count("val") == n_val and splits.count("train") == n - n_val


def test_a_single_document_is_split_at_a_line_boundary(tmp_path, char_tok):
    lines = [f"line {i} " + "x" * (i % 7) + "\n" for i in range(200)]
    text = "".join(lines)
    (path,) = write_files(tmp_path / "in", [text])
    meta = prepare_files([str(path)], char_tok, tmp_path / "out", val_fraction=0.1, progress=False)
    (train,) = split_documents(tmp_path / "out", "train", char_tok)
    (val,) = split_documents(tmp_path / "out", "val", char_tok)
    assert train + val == text
    assert train.endswith("\n") and val.startswith("line ")
    assert 0.05 < len(val) / len(text) <= 0.15
    assert meta["splits"]["train"]["documents"] == meta["splits"]["val"]["documents"] == 1


def test_a_single_jsonl_document_is_split_too(tmp_path, char_tok):
    text = "".join(f"verse {i}\n" for i in range(100))
    path = write_jsonl(tmp_path / "one.jsonl", [{"text": text}])
    prepare_files([str(path)], char_tok, tmp_path / "out", val_fraction=0.1, progress=False)
    (train,) = split_documents(tmp_path / "out", "train", char_tok)
    (val,) = split_documents(tmp_path / "out", "val", char_tok)
    assert train + val == text and train.endswith("\n") and val


def test_a_single_document_with_a_title_line_keeps_most_text_for_training(tmp_path, char_tok):
    # One line break near the start, then one long paragraph: the split must not send the paragraph
    # (nearly the whole corpus) to validation just to cut at a line boundary.
    text = "TITLE\n" + "words and more words " * 500
    (path,) = write_files(tmp_path / "in", [text])
    prepare_files([str(path)], char_tok, tmp_path / "out", val_fraction=0.05, progress=False)
    (train,) = split_documents(tmp_path / "out", "train", char_tok)
    (val,) = split_documents(tmp_path / "out", "val", char_tok)
    assert train + val == text
    assert 0 < len(val) <= 0.1 * len(text)


def test_iter_texts(tmp_path):
    write_files(tmp_path / "in", ["a", "b"])
    write_jsonl(tmp_path / "in" / "z.jsonl", [{"text": "c"}, {"text": "d"}])
    assert list(iter_texts([str(tmp_path / "in")])) == ["a", "b", "c", "d"]


# ---- bad input ----------------------------------------------------------------------------------


def test_missing_input(tmp_path, char_tok):
    missing = str(tmp_path / "nowhere" / "*.txt")
    with pytest.raises(GptkitError, match="no input files found") as e:
        prepare_files([missing], char_tok, tmp_path / "out", progress=False)
    assert missing in str(e.value)


def test_an_empty_directory(tmp_path, char_tok):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GptkitError, match="no input files found"):
        prepare_files([str(tmp_path / "empty")], char_tok, tmp_path / "out", progress=False)


def test_empty_files(tmp_path, char_tok):
    paths = write_files(tmp_path / "in", ["", ""])
    with pytest.raises(GptkitError, match="empty") as e:
        prepare_files([str(p) for p in paths], char_tok, tmp_path / "out", progress=False)
    assert str(paths[0]) in str(e.value)


def test_a_jsonl_of_blank_lines(tmp_path, char_tok):
    path = tmp_path / "blank.jsonl"
    path.write_text("\n  \n\n")
    with pytest.raises(GptkitError, match="empty"):
        prepare_files([str(path)], char_tok, tmp_path / "out", progress=False)


def test_a_jsonl_of_empty_texts(tmp_path, char_tok):
    path = write_jsonl(tmp_path / "empty.jsonl", [{"text": ""}, {"text": ""}, {"text": ""}])
    with pytest.raises(GptkitError, match="empty"):
        prepare_files([str(path)], char_tok, tmp_path / "out", val_fraction=0, progress=False)


@pytest.mark.parametrize("bad", [{"content": "x"}, {"text": 5}, {"text": None}, ["text"], "text"])
def test_jsonl_line_without_text_names_file_and_line(tmp_path, char_tok, bad):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"text": "ok"}, bad, {"text": "fine"}])
    with pytest.raises(GptkitError, match=r"bad\.jsonl:2: each line needs a string field 'text'"):
        prepare_files([str(path)], char_tok, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "meta.json").exists()


def test_jsonl_line_that_is_not_json_names_file_and_line(tmp_path, char_tok):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": "b"\n')
    with pytest.raises(GptkitError, match=r"bad\.jsonl:3: not valid JSON"):
        prepare_files([str(path)], char_tok, tmp_path / "out", progress=False)


def test_a_char_corpus_spelling_end_of_text_has_no_unknown_tokens(tmp_path):
    # Documents are encoded with allow_special=False: the literal "<|endoftext|>" of a text file must
    # come out as its characters, and a character vocabulary built from that text must know them.
    text = f"first story{EOT}second story\n"
    (path,) = write_files(tmp_path / "in", [text])
    tok = Tokenizer.char(text)
    prepare_files([str(path)], tok, tmp_path / "out", val_fraction=0, progress=False)
    tokens = split_tokens(tmp_path / "out", "train").tolist()
    assert tokens == [tok.eot_id, *tok.encode(text, allow_special=False)]
    assert tok.special_tokens["<|unk|>"] not in tokens and tokens.count(tok.eot_id) == 1
    assert tok.decode(tokens[1:]) == text


# ---- settings, parts, the validation draw ---------------------------------------------------------


@pytest.mark.parametrize("settings, message", [
    (dict(shard_tokens=0), "--shard-tokens must be at least 1, got 0"),
    (dict(workers=0), "--workers must be at least 1, got 0"),
    (dict(val_fraction=-1), r"--val-fraction must be at least 0 and below 1 \(e.g. 0.05\), got -1"),
    (dict(val_fraction=1.0), "--val-fraction must be"),
    (dict(val_fraction=float("nan")), "--val-fraction must be"),
    (dict(part="3/2"), "--part must be I/N"),
    (dict(part="0/4"), "--part must be I/N"),
    (dict(part="half"), "--part must be I/N"),
])
def test_bad_settings_are_refused_before_an_earlier_output_is_touched(tmp_path, char_tok, settings, message):
    write_files(tmp_path / "in", ["some text"])
    prepare_files([str(tmp_path / "in")], char_tok, tmp_path / "out", val_fraction=0, progress=False)
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    with pytest.raises(GptkitError, match=message):
        prepare_files([str(tmp_path / "in")], char_tok, tmp_path / "out", progress=False, **settings)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before


def test_parts_are_disjoint_and_together_the_whole_corpus_in_order(tmp_path):
    texts = make_docs(23)
    write_files(tmp_path / "in", texts[:5])
    write_jsonl(tmp_path / "in" / "rest.jsonl", [{"text": t} for t in texts[5:]])
    for n in (1, 2, 3, 7, 23):
        plans = [plan_inputs([str(tmp_path / "in")], part=f"{i}/{n}") for i in range(1, n + 1)]
        assert ["".join(d.pieces()) for plan in plans for d in plan.read()] == texts
        assert max(p.documents for p in plans) - min(p.documents for p in plans) <= 1
    with pytest.raises(GptkitError, match="part 1/24 holds no documents: the inputs have only 23; use at most 23 parts"):
        plan_inputs([str(tmp_path / "in")], part="1/24")


@pytest.mark.parametrize("n", [2, 3, 10, 97, 1000])
@pytest.mark.parametrize("k", [1, 2, 9])
def test_exactly_k_documents_are_held_out_spread_over_the_corpus(n, k):
    if k > n:
        return
    flags = list(validation_flags(n, k, seed=5))
    picked = [i for i, f in enumerate(flags) if f]
    assert len(flags) == n and len(picked) == k
    assert all(j * n // k <= i < (j + 1) * n // k + 1 for j, i in enumerate(picked))  # one in each k-th of the corpus
    assert flags == list(validation_flags(n, k, seed=5))


def test_a_single_document_without_line_breaks_is_cut_between_characters(tmp_path, char_tok):
    text = "床前明月光" * 400  # three bytes a character, no line break: cut inside the last tenth's first half
    (path,) = write_files(tmp_path / "in", [text])
    prepare_files([str(path)], char_tok, tmp_path / "out", val_fraction=0.1, progress=False)
    (train,) = split_documents(tmp_path / "out", "train", char_tok)
    (val,) = split_documents(tmp_path / "out", "val", char_tok)
    assert train + val == text and 0.04 < len(val) / len(text) < 0.06


def test_meta_records_a_checksum_of_every_shard(tmp_path, char_tok):
    meta = prepare_files([str(p) for p in write_files(tmp_path / "in", make_docs(40))], char_tok, tmp_path / "out",
                         shard_tokens=150, progress=False)
    for info in meta["splits"].values():
        for shard in info["shards"]:
            data = (tmp_path / "out" / shard["name"]).read_bytes()[64:]
            assert hashlib.sha256(data).hexdigest() == shard["sha256"] and len(data) == 2 * shard["tokens"]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no state or temporary files


def test_progress_shows_rate_tokens_and_documents(tmp_path, char_tok, capsys):
    prepare_files([str(p) for p in write_files(tmp_path / "in", make_docs(5))], char_tok, tmp_path / "out")
    err = capsys.readouterr().err
    assert "tokenizing" in err and "B/s" in err and "tokens" in err and "documents" in err
