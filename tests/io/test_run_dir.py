"""gptkit.run_dir: one writer per directory, runs continued or moved aside, outputs kept off inputs;
and gptkit.io's writes, which never replace a link or a special file and survive a full disk."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
from pathlib import Path

import pytest
import torch

from gptkit import GptkitError
from gptkit.io import write_text
from gptkit.run_dir import LOCK, check_output, kind_of, owned, training_run
from gptkit.tensor_io import save_tensors
from gptkit.tokenizer import Tokenizer

FORK = mp.get_context("fork")


def _hold(directory: Path, ready) -> None:
    with owned(directory):
        ready.set()
        signal.pause()


@pytest.fixture
def holder(tmp_path):
    """Another process holding ``tmp_path / "run"`` until it is killed (by the test, or after it)."""
    ready = FORK.Event()
    proc = FORK.Process(target=_hold, args=(tmp_path / "run", ready))
    proc.start()
    assert ready.wait(60), "the holder never took the lock"
    yield proc
    proc.kill()
    proc.join()


def test_a_second_writer_is_refused_naming_the_first(holder, tmp_path):
    with pytest.raises(GptkitError, match=rf"run is in use by pid {holder.pid} on "):
        with owned(tmp_path / "run"):
            pass


def test_a_lock_left_by_a_killed_writer_is_stale(holder, tmp_path):
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(60)
    assert (tmp_path / "run" / LOCK).is_file()  # left behind by the crash...
    with owned(tmp_path / "run"):  # ...and taken over, as the kernel dropped the flock with its holder
        pass
    assert not (tmp_path / "run" / LOCK).exists()


def test_owning_is_reentrant_within_a_process(tmp_path):
    with owned(tmp_path / "d"), owned(tmp_path / "d"):
        assert (tmp_path / "d" / LOCK).is_file()
    assert not (tmp_path / "d" / LOCK).exists()


def make_run(out: Path) -> dict[str, bytes]:
    """A run directory as training leaves it (with the bundled corpus's cache); returns its files."""
    files = {"latest": b"step-0000004\n", "metrics.jsonl": b'{"step": 1, "loss": 4.2}\n' * 3,
             "train_config.json": b'{"preset": "tiny"}', "checkpoints/step-0000004/config.json": b"{}",
             "data/char/meta.json": b"{}"}
    for name, content in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(content)
    return files


def test_a_fresh_run_where_a_run_is_is_refused_with_the_choices(tmp_path):
    out = tmp_path / "run"
    files = make_run(out)
    with pytest.raises(GptkitError, match="already holds a run with checkpoint step-0000004: continue it with --resume.*"
                                          "another --out.*--overwrite"):
        with training_run(out, resume=False, overwrite=False):
            pass
    assert {name: (out / name).read_bytes() for name in files} == files


def test_overwrite_moves_the_old_run_aside_and_keeps_the_cache(tmp_path):
    out = tmp_path / "run"
    files = make_run(out)
    with training_run(out, resume=False, overwrite=True):
        assert sorted(p.name for p in out.iterdir()) == [LOCK, "data"]  # a fresh run, with the corpus's cache
    (aside,) = tmp_path.glob("run.old-*")
    assert {name: (aside / name).read_bytes() for name in files if not name.startswith("data/")} == \
           {name: content for name, content in files.items() if not name.startswith("data/")}
    assert not (aside / LOCK).exists()


def test_kinds(tmp_path):
    make_run(tmp_path / "run")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"model_type": "gptkit"}')
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text('{"model_type": "gpt2"}')
    assert [kind_of(tmp_path / k) for k in ("run", "model", "hf", "nothing")] == ["run", "model", "hf-model", None]


@pytest.mark.parametrize("out, kind, inputs, fragment", [
    ("model", "tokenizer", [], "holds a gptkit model, and this command writes a tokenizer"),
    ("run", "model", [], "holds a training run"),
    ("books", "data", ["books"], "overlaps the input books"),  # the same directory
    ("books/prepared", "data", ["books"], "overlaps"),  # inside the input: its files would be read back
    (".", "run", ["books"], "overlaps"),  # around the input
    ("books", "tokenizer", ["books/*.txt"], "overlaps"),  # merges.txt would match the glob
    ("books/out", "data", ["books/**/*.json"], "overlaps"),  # meta.json would
    ("model/config.json", "model", [], "is a file"),
])
def test_outputs_that_would_clobber_are_refused(tmp_path, monkeypatch, out, kind, inputs, fragment):
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path / "run")
    (tmp_path / "books").mkdir()
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"model_type": "gptkit"}')
    with pytest.raises(GptkitError, match=fragment):
        check_output(out, kind, inputs)


@pytest.mark.parametrize("out, kind, inputs", [
    ("fresh", "run", ["books", "gpt2", None]),  # a name that is not on disk overlaps nothing
    ("books/out", "data", ["books/*.txt"]),  # *.txt does not reach into books/out
    ("model", "model", []),  # the same kind: converting again
])
def test_outputs_that_clobber_nothing_are_allowed(tmp_path, monkeypatch, out, kind, inputs):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "books").mkdir()
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"model_type": "gptkit"}')
    check_output(out, kind, inputs)


def test_a_symlink_is_written_through(tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text("old")
    (tmp_path / "link.json").symlink_to(target)
    write_text(tmp_path / "link.json", "new")
    assert (tmp_path / "link.json").is_symlink() and target.read_text() == "new"


@pytest.mark.parametrize("make", [os.mkfifo, os.mkdir], ids=["fifo", "directory"])
def test_a_special_file_in_the_way_is_refused_not_replaced(tmp_path, make):
    path = tmp_path / "config.json"
    make(path)
    with pytest.raises(GptkitError, match="is not a regular file"):
        write_text(path, "{}")
    assert path.exists() and not path.is_file()


@pytest.fixture
def small_disk(tmp_path):
    """A 512 KiB tmpfs, where this machine lets the test mount one (root on Linux)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root): the disk-full case is not exercised")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_is_one_error_and_the_old_files_stay(small_disk):
    char = Tokenizer.char("to be or not to be")
    char.save(small_disk / "tok")
    save_tensors(small_disk / "w.safetensors", {"w": torch.ones(1000)})
    before = {p.name: p.read_bytes() for p in (small_disk / "tok").iterdir()}
    before_weights = (small_disk / "w.safetensors").read_bytes()
    with pytest.raises(GptkitError, match="cannot write the tokenizer"):
        Tokenizer.gpt2().save(small_disk / "tok")  # 1.5 MB of vocabulary and merges
    with pytest.raises(GptkitError, match="cannot write .*w.safetensors.*it is unchanged"):
        save_tensors(small_disk / "w.safetensors", {"w": torch.ones(200_000)})
    with pytest.raises(GptkitError, match="no space left to write .*big.txt"):
        write_text(small_disk / "big.txt", "x" * 1_000_000)
    assert {p.name: p.read_bytes() for p in (small_disk / "tok").iterdir()} == before
    assert (small_disk / "w.safetensors").read_bytes() == before_weights
    assert sorted(p.name for p in small_disk.iterdir()) == ["tok", "w.safetensors"]  # no temporary files left
