"""`gptkit corpus ...` as a user runs it: one summary line, the kept records, one-line errors, resuming."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gptkit.cli.main import cli

from .synthetic import planted_corpus, read_jsonl_lines, write_jsonl


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    records, _ = planted_corpus(300, seed=5)
    return write_jsonl(folder / "in.jsonl", records)


def test_dedup_in_parts_then_merge(corpus, tmp_path):
    out = str(tmp_path / "d")
    first = run("corpus", "dedup", "--input", str(corpus), "--out", out, "--part", "1/2", "--quiet")
    assert first.exit_code == 0 and "signed part 1/2" in first.output and "--merge" in first.output
    run("corpus", "dedup", "--input", str(corpus), "--out", out, "--part", "2/2", "--quiet")
    merged = run("corpus", "dedup", "--input", str(corpus), "--out", out, "--merge", "--quiet")
    assert merged.exit_code == 0, merged.output
    assert merged.output.startswith("dedup: 300 documents, kept ")
    report = json.loads((tmp_path / "d" / "report.json").read_text())
    assert report["summary"] == merged.output.splitlines()[0]
    assert len(read_jsonl_lines(tmp_path / "d")) == report["kept"]


def test_decontaminate_and_filter_print_one_line_each(corpus, tmp_path):
    result = run("corpus", "decontaminate", "--input", str(corpus), "--out", str(tmp_path / "x"), "--task",
                 "shakespeare-cloze", "--task", "play", "--quiet")
    assert result.exit_code == 0, result.output
    assert "removed 0 (0.0%)" in result.output and "tasks hit: none" in result.output
    result = run("corpus", "filter", "--input", str(corpus), "--out", str(tmp_path / "f"), "--quiet",
                 "--compression", "gz")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "f" / "part-00001-of-00001.jsonl.gz").is_file()


def test_classifier_then_filter(corpus, tmp_path):
    pytest.importorskip("sklearn")
    from gptkit.data import shakespeare

    ref = write_jsonl(tmp_path / "ref.jsonl", [{"text": w["text"][i:i + 2000]} for w in shakespeare()[:5]
                                               for i in range(0, len(w["text"]), 2000)])
    result = run("corpus", "classifier", "--reference", str(ref), "--raw", str(corpus), "--out", str(tmp_path / "c.npz"))
    assert result.exit_code == 0, result.output
    assert "held-out accuracy" in result.output
    result = run("corpus", "filter", "--input", str(corpus), "--out", str(tmp_path / "f"), "--classifier",
                 str(tmp_path / "c.npz"), "--no-rules", "--quiet")
    assert result.exit_code == 0, result.output
    assert "classifier (pareto)" in result.output


@pytest.mark.parametrize("args, message", [
    (("--part", "3/2"), "--part must be I/N"),
    (("--task", "nope"), "no shipped task of that name"),
])
def test_bad_arguments_are_one_line_errors(corpus, tmp_path, args, message):
    result = CliRunner().invoke(cli, ["corpus", "decontaminate", "--input", str(corpus), "--out", str(tmp_path / "o"),
                                      *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_one_out_per_step_and_per_number_of_parts(corpus, tmp_path):
    out = str(tmp_path / "o")
    assert run("corpus", "filter", "--input", str(corpus), "--out", out, "--quiet").exit_code == 0
    result = CliRunner().invoke(cli, ["corpus", "decontaminate", "--input", str(corpus), "--out", out])
    assert result.exit_code == 2 and "give each step its own --out" in result.output
    result = CliRunner().invoke(cli, ["corpus", "filter", "--input", str(corpus), "--out", out, "--part", "1/2"])
    assert result.exit_code == 2 and "another number of parts" in result.output
    result = CliRunner().invoke(cli, ["corpus", "filter", "--input", str(corpus), "--out", str(corpus.parent)])
    assert result.exit_code == 2 and "overlaps the input" in result.output


def test_an_interrupted_step_resumes_to_the_same_bytes(corpus, tmp_path, monkeypatch):
    import gptkit.corpus.records as records
    import gptkit.corpus.step as step
    from gptkit.corpus.filter import Rules, filter_files

    monkeypatch.setattr(step, "CHECKPOINT_CHARS", 20_000)
    real, calls = records.batches, {"n": 0, "die": None}

    def small_batches(items, chars=1 << 21):  # batches of 30,000 characters: checkpoints every few
        for batch in real(items, 30_000):
            calls["n"] += 1
            if calls["n"] == calls["die"]:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(step, "batches", small_batches)
    filter_files([str(corpus)], tmp_path / "whole", Rules(min_words=200), compression="zst")
    calls.update(n=0, die=6)
    with pytest.raises(KeyboardInterrupt):
        filter_files([str(corpus)], tmp_path / "cut", Rules(min_words=200), compression="zst")
    state = json.loads((tmp_path / "cut" / ".filter-part-00001-of-00001.json").read_text())
    assert state["next"] > 0 and not state["done"]
    with open(tmp_path / "cut" / "part-00001-of-00001.jsonl.zst", "ab") as f:
        f.write(b"torn bytes past the checkpoint")
    report = filter_files([str(corpus)], tmp_path / "cut", Rules(min_words=200), compression="zst")
    name = "part-00001-of-00001.jsonl.zst"
    assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    assert report["documents"] == 300
    whole = json.loads((tmp_path / "whole" / "report.json").read_text())
    assert report["removed"] == whole["removed"] and report["kept"] == whole["kept"]


def test_the_steps_never_load_pytorch(corpus, tmp_path):
    import subprocess
    import sys

    for step in ("dedup", "decontaminate", "filter"):
        result = subprocess.run([sys.executable, "-X", "importtime", "-m", "gptkit", "corpus", step, "--input", str(corpus),
                                 "--out", str(tmp_path / step), "--quiet"], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
        assert " torch" not in "".join(line.split("|")[-1] for line in result.stderr.splitlines() if "import time" in line)
