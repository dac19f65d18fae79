"""A prepare that dies part-way and is started again with the same command ends with exactly the
files of an uninterrupted run, without encoding again what its finished shards hold."""

from __future__ import annotations

import importlib
import os
import random
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner

from gptkit.cli.main import cli
from gptkit.data import prepare_files, shakespeare
from gptkit.data.segments import segments
from gptkit.tokenizer import Tokenizer

from .conftest import ALPHABET

prepare_module = importlib.import_module("gptkit.data.prepare")  # the module, not the function of that name


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.fixture
def corpus(tmp_path) -> Path:
    rng = random.Random(0)
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(30):
        words = [rng.choice(["the", "king", "明月", "dies", "\n", "\n\n", "é!"]) for _ in range(rng.randint(0, 300))]
        (folder / f"{i:02d}.txt").write_text(" ".join(words), encoding="utf-8")
    return folder


class Crash(Exception):
    pass


def test_resumed_runs_equal_the_uninterrupted_one_wherever_they_stopped(tmp_path, corpus, monkeypatch):
    # Small segments and batches put the stops inside documents, segments and shards alike.
    monkeypatch.setattr(prepare_module, "segments", partial(segments, size=400))
    monkeypatch.setattr(prepare_module, "BATCH_CHARS", 500)
    tok = Tokenizer.char(ALPHABET + "明月")
    run = partial(prepare_files, [str(corpus)], tok, val_fraction=0.2, seed=1, shard_tokens=1000, workers=2, progress=False)
    run(tmp_path / "full")
    expected = files_of(tmp_path / "full")
    assert len([n for n in expected if n.endswith(".bin")]) > 10

    encoded: list[int] = []
    real = prepare_module.encode_batch

    def counting(encode, eot_id, batch, crash_at=None):
        encoded.append(len(batch.texts))
        if len(encoded) == crash_at:
            raise Crash
        return real(encode, eot_id, batch)

    monkeypatch.setattr(prepare_module, "encode_batch", counting)
    run(tmp_path / "count")
    total = sum(encoded)
    assert len(encoded) > 19
    for crash_at in (2, 7, 13, 19):
        out = tmp_path / f"stop{crash_at}"
        encoded.clear()
        monkeypatch.setattr(prepare_module, "encode_batch", partial(counting, crash_at=crash_at))
        with pytest.raises(Crash):
            run(out)
        assert not (out / "meta.json").exists()
        monkeypatch.setattr(prepare_module, "encode_batch", counting)
        encoded.clear()
        run(out)
        assert files_of(out) == expected, crash_at
        if crash_at > 7:
            assert sum(encoded) < total  # the finished shards' text was not encoded again


def test_changed_settings_start_afresh(tmp_path, corpus):
    tok = Tokenizer.char(ALPHABET + "明月")
    prepare_files([str(corpus)], tok, tmp_path / "out", shard_tokens=5000, progress=False)
    (tmp_path / "out" / ".prepare-state.json").write_text('{"key": "another run", "splits": {}}')
    (tmp_path / "out" / "train-09999.bin").write_bytes(b"stale")
    meta = prepare_files([str(corpus)], tok, tmp_path / "out", shard_tokens=8000, progress=False)
    names = {p.name for p in (tmp_path / "out").glob("*.bin")}
    assert names == {s["name"] for split in meta["splits"].values() for s in split["shards"]}
    assert not (tmp_path / "out" / ".prepare-state.json").exists()


def test_sigkill_of_the_real_command_then_the_same_command_again(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for work in shakespeare()[:5]:  # about 700 KB
        (corpus / f"{work['name']}.txt").write_text(work["text"], encoding="utf-8")
    args = ["prepare", "--input", str(corpus), "--tokenizer", "gpt2", "--workers", "2", "--shard-tokens", "5000",
            "--val-fraction", "0.1", "--quiet"]
    killed, full = tmp_path / "killed", tmp_path / "full"
    state = killed / ".prepare-state.json"
    proc = subprocess.Popen([sys.executable, "-m", "gptkit", *args, "--out", str(killed)],
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:  # kill once a few shards are finished
        if len(list(killed.glob("train-*.bin"))) >= 3 and state.is_file():
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "prepare finished before it could be killed"
    assert state.is_file() and not (killed / "meta.json").exists()

    for out in (killed, full):
        result = CliRunner().invoke(cli, [*args, "--out", str(out)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    assert files_of(killed) == files_of(full)
