"""decontaminate: every document that shares a 13-gram (lowercased, punctuation removed) with a task
is removed, and nothing else: not a 12-word overlap, not a 13-gram broken across a task boundary."""

from __future__ import annotations

import json
import random

import pytest

from gptkit.corpus.decontaminate import Index, decontaminate_files, load_task_texts, shipped_tasks
from gptkit.corpus.text import words
from gptkit.errors import GptkitError

from .synthetic import document, read_jsonl_lines, vocabulary, write_jsonl


def test_every_planted_13_gram_overlap_is_removed_and_nothing_else(tmp_path):
    rng = random.Random(0)
    vocab = vocabulary(3000, seed=7)
    task_texts = [document(rng, vocab, 20, 60) for _ in range(40)]
    write_jsonl(tmp_path / "task.jsonl", [{"question": t, "label": "x"} for t in task_texts])
    other_task = [document(rng, vocab, 20, 60) for _ in range(10)]
    write_jsonl(tmp_path / "other.jsonl", [{"text": t} for t in other_task])

    records, dirty = [], set()
    for i in range(600):
        text = document(rng, vocab, 100, 300)
        kind = rng.random()
        if kind < 0.15:  # a 13-word span of a task, in other case and punctuation, inside the document
            ws = words(rng.choice(task_texts))
            start = rng.randrange(len(ws) - 12)
            span = " ".join(w.upper() if rng.random() < 0.5 else w + "," for w in ws[start:start + 13])
            cut = rng.randrange(len(text))
            cut = text.rfind(" ", 0, cut) + 1
            text = text[:cut] + span + " " + text[cut:]
            dirty.add(i)
        elif kind < 0.3:  # only 12 words of a task (after a word no task has): not an overlap
            ws = words(rng.choice(task_texts))
            start = rng.randrange(len(ws) - 11)
            text = text + " zzz " + " ".join(ws[start:start + 12])
        records.append({"id": i, "text": text})
    write_jsonl(tmp_path / "corpus.jsonl", records)

    report = decontaminate_files([str(tmp_path / "corpus.jsonl")], tmp_path / "out",
                                 [str(tmp_path / "task.jsonl"), str(tmp_path / "other.jsonl")])
    kept = {json.loads(line)["id"] for line in read_jsonl_lines(tmp_path / "out")}
    assert kept == set(range(600)) - dirty
    assert report["removed"] == {"task overlap": len(dirty)}
    tasks = report["extra"]["tasks"]
    assert tasks[str(tmp_path / "task.jsonl")]["documents_hit"] == len(dirty)
    assert tasks[str(tmp_path / "other.jsonl")]["documents_hit"] == 0
    assert "tasks hit: " + str(tmp_path / "task.jsonl") in report["summary"]
    hit = report["extra"]["hits"][0]
    assert len(hit["ngram"].split()) == 13 and hit["document"] in dirty


def test_a_13_gram_across_two_fields_of_a_task_is_not_an_overlap():
    index = Index([load_task_texts_from(["a b c d e f g", "h i j k l m n"])])
    assert index.hits(["a b c d e f g h i j k l m n"]) == [None]
    assert index.hits(["x a b c d e f g"]) == [None]


def load_task_texts_from(texts):
    from gptkit.corpus.decontaminate import Task

    return Task("t", texts)


def test_the_shipped_tasks_are_read_and_their_own_text_is_caught():
    names = shipped_tasks()
    assert "shakespeare-cloze" in names and "play" in names
    task = load_task_texts("shakespeare-lastword")
    assert task.texts and all(t.strip() for t in task.texts)
    index = Index([task, load_task_texts("nextline")])
    long = [t for t in task.texts if len(words(t)) >= 13][:3]
    found = index.hits(["Preface. " + t + " And more." for t in long] + ["nothing to see here at all today"])
    assert all(f is not None and f[1] == {0} or f is not None and 0 in f[1] for f in found[:3])
    assert found[3] is None
    assert index.stats["shakespeare-lastword"]["ngrams"] > 0


def test_an_unknown_task_is_a_one_line_error(tmp_path):
    with pytest.raises(GptkitError, match="no shipped task of that name"):
        load_task_texts("no-such-task")


def test_a_yaml_task_file_is_read_as_eval_reads_it(tmp_path):
    (tmp_path / "data.jsonl").write_text(json.dumps({"q": "one two three four five six seven", "answer": "eight nine ten "
                                                     "eleven twelve thirteen"}) + "\n")
    (tmp_path / "t.yaml").write_text("name: t\ntype: generate\nprompt: 'Q: {q}'\ndata: data.jsonl\n")
    task = load_task_texts(str(tmp_path / "t.yaml"))
    assert task.texts == ["Q: one two three four five six seven eight nine ten eleven twelve thirteen"]


def test_a_13_gram_from_a_question_into_its_answer_is_an_overlap(tmp_path):
    question = "which of the two kings of the north rode first"
    answer = "the elder rode first into the cold morning light"
    (tmp_path / "qa.jsonl").write_text(json.dumps({"question": question, "answer": answer, "n": 3}) + "\n")
    index = Index([load_task_texts(str(tmp_path / "qa.jsonl"))])
    spanning = "Notes: kings of the north rode first -- The elder rode first into the cold. End."
    assert len(words("kings of the north rode first the elder rode first into the cold")) == 13
    assert index.hits([spanning])[0] is not None
    assert index.hits(["kings of the north rode first; then, the elder rode first into the"])[0] is None


def test_cut_removes_the_span_and_200_characters_around_it_as_gpt3_did(tmp_path):
    rng = random.Random(4)
    vocab = vocabulary(2000, seed=4)
    task = document(rng, vocab, 30, 40)
    write_jsonl(tmp_path / "task.jsonl", [{"text": task}])
    span = " ".join(words(task)[5:18])
    before, after = document(rng, vocab, 150, 150), document(rng, vocab, 150, 150)
    many = " ".join(f"{document(rng, vocab, 60, 60)} {span}" for _ in range(11))  # 12 pieces
    short = f"{document(rng, vocab, 20, 20)} {span} {document(rng, vocab, 20, 20)}"  # nothing of 200 left
    records = [{"id": 0, "text": f"{before} {span.upper()}, {after}", "keep": [1, 2]},
               {"id": 1, "text": many}, {"id": 2, "text": short}, {"id": 3, "text": before}]
    write_jsonl(tmp_path / "in.jsonl", records)
    report = decontaminate_files([str(tmp_path / "in.jsonl")], tmp_path / "out", [str(tmp_path / "task.jsonl")],
                                 cut_spans=True)
    out = [json.loads(line) for line in read_jsonl_lines(tmp_path / "out")]
    assert [r["id"] for r in out] == [0, 0, 3]
    assert out[0]["keep"] == [1, 2] and out[2]["text"] == before
    start = records[0]["text"].index(span.upper())
    end = start + len(span) + 1  # the comma belongs to the last word's token
    assert out[0]["text"] == records[0]["text"][:start - 200]
    assert out[1]["text"] == records[0]["text"][end + 200:]
    assert report["removed"] == {"task overlap (more than 10 pieces)": 1, "task overlap (no piece of 200 characters left)": 1}
    assert report["extra"]["cut_documents"] == 1 and report["extra"]["pieces"] == 2
    assert "cut 1 into 2 pieces" in report["summary"]
