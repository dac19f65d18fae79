"""Nothing a user does loses their work (issue 22): each writing command, run as a user runs it, is
refused while another writer holds its --out, refuses to start a run over a run or to write over an
input, and stops a diverging run; and in each case what was there before is byte for byte intact."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gptkit.run_dir import owned
from tests.cli.forked import Result, gptkit

TRAIN = ["--preset", "tiny", "--batch-size", "2", "--block-size", "16", "--sample-tokens", "0", "--quiet"]


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file below ``directory`` and its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def error_line(result: Result) -> str:
    """The one line a refused command prints, checked to be that and nothing worse."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), result.stderr
    return lines[-1]


@pytest.fixture
def run(trained_tiny, tmp_path) -> Path:
    """A copy of a finished training run (30 steps, one checkpoint)."""
    return Path(shutil.copytree(trained_tiny, tmp_path / "run"))


@pytest.fixture
def hf(model, tmp_path) -> Path:
    """The model exported to Hugging Face's layout, for `convert`."""
    assert gptkit("export", "--model", str(model), "--out", str(tmp_path / "hf"), cwd=tmp_path).returncode == 0
    return tmp_path / "hf"


def text(tmp: Path) -> str:
    (tmp / "books").mkdir(exist_ok=True)
    (tmp / "books" / "a.txt").write_text("To be, or not to be, that is the question.\n" * 20)
    return str(tmp / "books")


WRITERS = {  # each writing command, writing into OUT
    "pretrain": lambda m, hf, t: ["pretrain", *TRAIN, "--max-steps", "2", "--out", "OUT"],
    "finetune": lambda m, hf, t: ["finetune", "--model", str(m), "--task", "classify", "--train", ft_file(t),
                                  "--valid", ft_file(t), "--out", "OUT", "--max-steps", "1", "--quiet"],
    "dialogue train": lambda m, hf, t: ["dialogue", "train", "--init-from", str(m), "--out", "OUT", "--max-steps", "1",
                                        "--batch-size", "2", "--max-words", "8", "--quiet"],
    "prepare": lambda m, hf, t: ["prepare", "--input", text(t), "--tokenizer", "char", "--out", "OUT", "--quiet"],
    "tokenizer train": lambda m, hf, t: ["tokenizer", "train", "--input", text(t), "--vocab-size", "300", "--out", "OUT"],
    "export": lambda m, hf, t: ["export", "--model", str(m), "--out", "OUT"],
    "convert": lambda m, hf, t: ["convert", "--model", str(hf), "--out", "OUT"],
}


def made(path: str) -> str:
    """A file that exists (what it holds does not matter: the refusal comes before it is read)."""
    Path(path).write_text("name: t\n")
    return path


def link(tmp: Path, target: str) -> str:
    (tmp / "results.json").symlink_to(target)
    return str(tmp / "results.json")


def ft_file(tmp: Path) -> str:
    path = tmp / "ft.jsonl"
    path.write_text('{"text": "to be", "label": "a"}\n{"text": "or not", "label": "b"}\n')
    return str(path)


@pytest.mark.parametrize("command", list(WRITERS))
def test_a_second_writer_is_refused_naming_the_first(command, model, hf, tmp_path):
    out = tmp_path / "out"
    args = [str(out) if a == "OUT" else a for a in WRITERS[command](model, hf, tmp_path)]
    with owned(out):  # this test's process is the first writer
        (out / "mine.txt").write_text("the first writer's work")
        result = gptkit(*args, cwd=tmp_path)
        assert f"is in use by pid {os.getpid()} on " in error_line(result)
        assert snapshot(out) == {".gptkit.lock": (out / ".gptkit.lock").read_bytes(), "mine.txt": b"the first writer's work"}


def test_pretrain_on_a_run_is_refused_and_overwrite_moves_it_aside(run, tmp_path):
    before = snapshot(run)
    line = error_line(gptkit("pretrain", *TRAIN, "--max-steps", "2", "--out", str(run), cwd=tmp_path))
    assert "already holds a run with checkpoint step-0000030" in line and "--resume" in line and "--overwrite" in line
    assert snapshot(run) == before  # metrics, latest, train_config.json: all as they were
    result = gptkit("pretrain", *TRAIN, "--max-steps", "2", "--out", str(run), "--overwrite", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (aside,) = tmp_path.glob("run.old-*")
    assert f"moved the run that was in {run} to {aside}" in result.stderr
    assert snapshot(aside) == before
    assert (run / "latest").read_text() == "step-0000002\n"


def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(run, tmp_path):
    original = snapshot(run / "checkpoints" / "step-0000030")
    result = gptkit("pretrain", "--out", str(run), "--resume", "--max-steps", "60", "--lr", "1e6", "--save-every", "1",
                    "--keep-checkpoints", "1", "--quiet", cwd=tmp_path)
    line = error_line(result)
    latest = (run / "latest").read_text().strip()
    assert "training diverged at step" in line and f"last good checkpoint, {run}/checkpoints/{latest}, is kept" in line
    assert "a lower --lr or --muon-lr" in line  # the run trains with Muon: both rates are suspects
    diverged_at = int(line.split("diverged at step ")[1].split()[0])
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    # the checkpoint behind the first non-finite loss is set aside; pruning (keep 1) never took the good one
    assert kept == [f"diverged-step-{diverged_at - 1:07d}", latest] or kept == [latest]
    assert int(latest.split("-")[1]) < diverged_at - 1 or latest == "step-0000030"
    if latest == "step-0000030":
        assert snapshot(run / "checkpoints" / latest) == original
    result = gptkit("generate", "--model", str(run), "--max-new-tokens", "4", "--seed", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("case", ["tokenizer over a model", "prepare inside its input", "prepare onto its input",
                                  "finetune onto its model", "export onto its model", "convert onto a run",
                                  "pretrain into prepared data", "eval results onto its data",
                                  "eval results through a link to its data", "eval results inside its model",
                                  "eval plot over its task file", "quality classifier onto its corpus"])
def test_an_output_over_an_input_or_another_kind_is_refused(case, model, run, char_data, tmp_path):
    books = text(tmp_path)
    args, kept = {
        "tokenizer over a model": (["tokenizer", "train", "--input", books, "--vocab-size", "300", "--out", str(model)],
                                   model),
        "prepare inside its input": (["prepare", "--input", books, "--out", f"{books}/prepared"], Path(books)),
        "prepare onto its input": (["prepare", "--input", books, "--out", books], Path(books)),
        "finetune onto its model": (["finetune", "--model", str(run), "--task", "classify", "--train", ft_file(tmp_path),
                                     "--valid", ft_file(tmp_path), "--out", str(run)], run),
        "export onto its model": (["export", "--model", str(model), "--out", str(model)], model),
        "convert onto a run": (["convert", "--model", str(model), "--out", str(run)], run),
        "pretrain into prepared data": (["pretrain", *TRAIN, "--max-steps", "2", "--out", char_data], Path(char_data)),
        "eval results onto its data": (["eval", "perplexity", "--model", str(model), "--data", f"{books}/a.txt",
                                        "--out", f"{books}/a.txt"], Path(books)),
        "eval results through a link to its data": (["eval", "perplexity", "--model", str(model), "--data",
                                                     f"{books}/a.txt", "--out", link(tmp_path, f"{books}/a.txt")],
                                                    Path(books)),
        "eval results inside its model": (["eval", "perplexity", "--model", str(model), "--data", f"{books}/a.txt",
                                           "--out", str(model / "model.safetensors")], model),
        "eval plot over its task file": (["eval", "task", "--model", str(model), "--task", made(f"{books}/t.png"),
                                          "--shots", "0,1", "--out", f"{books}/t.json"], Path(books)),
        "quality classifier onto its corpus": (["corpus", "classifier", "--reference", f"{books}/a.txt",
                                                "--raw", f"{books}/*.txt", "--out", f"{books}/b.txt"], Path(books)),
    }[case]
    before = snapshot(kept)
    line = error_line(gptkit(*args, cwd=tmp_path))
    assert "--out" in line and ("overlaps the input" in line or "holds " in line), line
    assert snapshot(kept) == before


@pytest.mark.parametrize("command", ["pretrain", "finetune", "dialogue train", "export", "convert"])
def test_the_refusal_comes_before_pytorch_loads(command, model, hf, tmp_path):
    # Refused at once (a fraction of a second), not after seconds of importing PyTorch and loading a model.
    out = tmp_path / "out"
    args = [str(out) if a == "OUT" else a for a in WRITERS[command](model, hf, tmp_path)]
    code = ("import sys\nfrom gptkit.cli.main import cli\n"
            f"try:\n    cli({args!r})\nexcept SystemExit as e:\n    assert e.code == 2, e.code\n"
            "assert 'torch' not in sys.modules, 'PyTorch was loaded before the refusal'\n")
    with owned(out):
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"is in use by pid {os.getpid()}" in done.stderr
