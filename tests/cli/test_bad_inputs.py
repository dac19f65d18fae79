"""Every command, driven in its own process with bad input of each kind a user can give: a hang, a
silently wrong result, a corrupt or foreign file, text that is not UTF-8, a number out of range.
Each must end within a bounded time with a non-zero exit and one line that names the problem.

Each command runs in its own process, forked from one that has imported PyTorch (tests/cli/forked.py).
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zstandard

from gptkit.data.shards import HEADER, HEADER_BYTES, MAGIC, VERSION
from tests.cli.forked import gptkit

LATIN1 = "caf\xe9 na\xefve".encode("latin-1")  # bytes that are not UTF-8


def broken_copy(model: Path, tmp: Path, edit: Callable[[Path], None]) -> str:
    target = tmp / "broken"
    shutil.copytree(model, target)
    edit(target)
    return str(target)


def flip_bytes(directory: Path) -> None:
    """Set the exponent bits of a run of weights: finite floats become inf and nan, the size stays."""
    path = directory / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-4096:] = b"\xff" * 4096
    path.write_bytes(bytes(data))


def set_config(**keys) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        config = json.loads((directory / "config.json").read_text())
        config.update(keys)
        (directory / "config.json").write_text(json.dumps({k: v for k, v in config.items() if v is not None}))
    return edit


def write(name: str, content: bytes | str) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        (directory / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return edit


def out_of_vocabulary_shards(char_data: str, tmp: Path) -> str:
    """A prepared directory whose header is valid but one token id is past the vocabulary."""
    target = tmp / "data"
    shutil.copytree(char_data, target)
    shard = sorted(target.glob("train-*.bin"))[0]
    raw = bytearray(shard.read_bytes())
    _, _, itemsize, n, vocab = HEADER.unpack_from(raw)
    assert raw[:8] == MAGIC
    ids = np.frombuffer(raw, dtype=np.uint16 if itemsize == 2 else np.uint32, offset=HEADER_BYTES).copy()
    ids[n // 2] = vocab + 5
    shard.write_bytes(HEADER.pack(MAGIC, VERSION, itemsize, n, vocab).ljust(HEADER_BYTES, b"\0") + ids.tobytes())
    return str(target)


def run_dir_with(model: Path, tmp: Path, name: str, content: bytes) -> str:
    """A training run directory whose ``name`` file holds ``content``."""
    run = tmp / "run"
    shutil.copytree(model, run / "checkpoints" / "step-0000001")
    (run / "latest").write_text("step-0000001\n")
    (run / "train_config.json").write_text(json.dumps({"preset": "tiny", "out": str(run)}))
    (run / name).write_bytes(content)
    return str(run)


def text_file(tmp: Path, name: str, content: bytes | str) -> str:
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def task_file(tmp: Path, rows: list[dict] | None = None, **fields) -> str:
    """An eval task file (choice, prompt "{context}") with ``fields`` changed, and its data ``rows``."""
    rows = rows or [{"context": "to be", "choices": ["or", "not"], "answer": 0}]
    (tmp / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {"name": "t", "type": "choice", "data": "d.jsonl", "prompt": "{context}", **fields}
    return text_file(tmp, "task.yaml", json.dumps(spec))  # YAML reads JSON


def finetune_args(tmp: Path, model: Path, task: str, row: str) -> list[str]:
    """`gptkit finetune` on a training file of one ``row`` (JSON), validated on the same file."""
    data = text_file(tmp, "a.jsonl", row + "\n")
    return ["finetune", "--model", str(model), "--task", task, "--train", data, "--valid", data, "--out", str(tmp / "ft")]


def sharded_hf_model(tmp: Path, weight_map: dict) -> str:
    """A Hugging Face GPT-2 directory whose model.safetensors.index.json holds ``weight_map``."""
    (tmp / "hf").mkdir()
    (tmp / "hf" / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 1, "n_embd": 8, "n_head": 2}))
    (tmp / "hf" / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return str(tmp / "hf")


def truncated(tmp: Path, name: str) -> str:
    """A compressed JSON Lines file cut short: its end of stream is missing."""
    data = b'{"text": "to be or not to be"}\n' * 200
    packed = gzip.compress(data) if name.endswith(".gz") else zstandard.ZstdCompressor().compress(data)
    return text_file(tmp, name, packed[:-6])


TRAIN = ["--preset", "tiny", "--max-steps", "2", "--batch-size", "2", "--block-size", "16", "--sample-tokens", "0",
         "--quiet"]

# (id, builder(model dir, prepared data dir, tmp) -> argv, what the one-line message must say)
CASES: list[tuple[str, Callable[[Path, str, Path], list[str]], str]] = [
    # hangs
    ("prepare-shard-tokens-0", lambda m, d, t: ["prepare", "--input", text_file(t, "a.txt", "hello world\n" * 50),
                                                "--tokenizer", "char", "--out", str(t / "o"), "--shard-tokens", "0"],
     "shard-tokens"),
    ("pretrain-block-size-huge", lambda m, d, t: ["pretrain", "--data", d, "--out", str(t / "r"), *TRAIN,
                                                  "--block-size", "100000"], "block-size"),
    # silently wrong before
    ("prepare-val-fraction-negative", lambda m, d, t: ["prepare", "--input", text_file(t, "a.txt", "hi\n" * 50),
                                                       "--tokenizer", "char", "--out", str(t / "o"),
                                                       "--val-fraction", "-1"], "val-fraction"),
    # corrupt or foreign artifacts
    ("shard-ids-out-of-vocabulary", lambda m, d, t: ["pretrain", "--data", out_of_vocabulary_shards(d, t),
                                                     "--out", str(t / "r"), *TRAIN], "train-00000.bin"),
    ("weights-inf-nan", lambda m, d, t: ["generate", "--model", broken_copy(m, t, flip_bytes), "--max-new-tokens", "4"],
     "inf or nan"),
    ("weights-truncated", lambda m, d, t: ["generate", "--model", broken_copy(m, t, write("model.safetensors", b"\x08")),
                                           "--max-new-tokens", "4"], "truncated or corrupt"),
    ("config-n-layer-word", lambda m, d, t: ["generate", "--model", broken_copy(m, t, set_config(n_layer="four"))],
     "n_layer"),
    ("config-n-head-zero", lambda m, d, t: ["info", "--model", broken_copy(m, t, set_config(n_head=0))], "n_head"),
    ("config-missing-n-head", lambda m, d, t: ["info", "--model", broken_copy(m, t, set_config(n_head=None))], "n_head"),
    ("config-json-array", lambda m, d, t: ["generate", "--model", broken_copy(m, t, write("config.json", "[1, 2]"))],
     "config.json"),
    ("config-not-json", lambda m, d, t: ["eval", "perplexity", "--model", broken_copy(m, t, write("config.json", "{oops")),
                                         "--data", text_file(t, "p.txt", "to be")], "not valid JSON"),
    # text that is not UTF-8
    ("vocab-not-utf8", lambda m, d, t: ["generate", "--model", broken_copy(m, t, write("vocab.json", LATIN1))],
     "vocab.json"),
    ("tokenizer-config-not-utf8", lambda m, d, t: ["generate", "--model",
                                                   broken_copy(m, t, write("tokenizer_config.json", LATIN1))],
     "tokenizer_config.json"),
    ("latest-not-utf8", lambda m, d, t: ["generate", "--model", run_dir_with(m, t, "latest", LATIN1)], "latest"),
    ("train-config-not-json", lambda m, d, t: ["pretrain", "--out", run_dir_with(m, t, "train_config.json", b"{oops"),
                                               "--resume"], "train_config.json"),
    ("config-file-not-utf8", lambda m, d, t: ["pretrain", "--config", text_file(t, "run.yaml", LATIN1)], "UTF-8"),
    ("task-yaml-not-utf8", lambda m, d, t: ["eval", "task", "--model", str(m), "--task",
                                            text_file(t, "task.yaml", LATIN1)], "task.yaml"),
    ("dialogues-not-utf8", lambda m, d, t: ["dialogue", "train", "--data", text_file(t, "d.txt", LATIN1),
                                            "--out", str(t / "c")], "UTF-8"),
    # numbers out of range
    ("eval-batch-size-0", lambda m, d, t: ["eval", "perplexity", "--model", str(m), "--data",
                                           text_file(t, "p.txt", "to be"), "--batch-size", "0"], "batch-size"),
    ("predict-batch-size-0", lambda m, d, t: ["predict", "--model", str(m), "--input", text_file(t, "x.jsonl", "{}"),
                                              "--batch-size", "0"], "batch-size"),
    ("eval-limit-0", lambda m, d, t: ["eval", "task", "--model", str(m), "--task", "shakespeare-cloze", "--limit", "0"],
     "limit"),
    ("pretrain-dropout-2", lambda m, d, t: ["pretrain", "--data", d, "--out", str(t / "r"), *TRAIN, "--dropout", "2"],
     "dropout"),
    ("pretrain-lr-nan", lambda m, d, t: ["pretrain", "--data", d, "--out", str(t / "r"), *TRAIN, "--lr", "nan"], "lr"),
    ("pretrain-muon-momentum-1", lambda m, d, t: ["pretrain", "--data", d, "--out", str(t / "r"), *TRAIN,
                                                  "--muon-momentum", "1"], "--muon-momentum must be in"),
    ("pretrain-batch-size-0", lambda m, d, t: ["pretrain", "--data", d, "--out", str(t / "r"), *TRAIN,
                                               "--batch-size", "0"], "batch-size"),
    ("tokenizer-min-frequency-negative", lambda m, d, t: ["tokenizer", "train", "--input", text_file(t, "a.txt", "ab ab"),
                                                          "--vocab-size", "300", "--min-frequency", "-1",
                                                          "--out", str(t / "tok")], "min-frequency"),
    ("tokenizer-vocab-size-huge", lambda m, d, t: ["tokenizer", "train", "--input", text_file(t, "a.txt", "ab ab"),
                                                   "--vocab-size", "100000000000", "--out", str(t / "tok")],
     "vocab-size"),
    ("tokenizer-train-empty-file", lambda m, d, t: ["tokenizer", "train", "--input", text_file(t, "e.txt", ""),
                                                    "--vocab-size", "300", "--out", str(t / "tok")], "empty"),
    ("generate-temperature-nan", lambda m, d, t: ["generate", "--model", str(m), "--temperature", "nan"],
     "temperature"),
    ("generate-top-p-2", lambda m, d, t: ["generate", "--model", str(m), "--top-p", "2"], "top-p"),
    ("generate-max-new-tokens-negative", lambda m, d, t: ["generate", "--model", str(m), "--max-new-tokens", "-3"],
     "max-new-tokens"),
    ("chat-num-hypotheses-0", lambda m, d, t: ["chat", "--model", str(m), "--num-hypotheses", "0"], "num-hypotheses"),
    ("finetune-epochs-0", lambda m, d, t: ["finetune", "--model", str(m), "--task", "classify", "--train",
                                           text_file(t, "a.jsonl", '{"text": "a", "label": "x"}\n'),
                                           "--valid", str(t / "a.jsonl"), "--out", str(t / "ft"), "--epochs", "0"],
     "epochs"),
    ("dialogue-val-fraction-2", lambda m, d, t: ["dialogue", "train", "--val-fraction", "2", "--out", str(t / "c")],
     "val-fraction"),
    # things that are not there, or not what they should be
    ("device-unknown", lambda m, d, t: ["generate", "--model", str(m), "--device", "tpu9"], "device"),
    ("device-cuda-missing", lambda m, d, t: ["eval", "perplexity", "--model", str(m), "--data",
                                             text_file(t, "p.txt", "to be"), "--device", "cuda"], "cuda"),
    ("model-missing", lambda m, d, t: ["generate", "--model", str(t / "nope")], "nope"),
    ("model-is-a-tokenizer", lambda m, d, t: ["generate", "--model", d], "no model"),
    ("data-not-prepared", lambda m, d, t: ["pretrain", "--data", str(m), "--out", str(t / "r"), *TRAIN], "prepare"),
    ("resume-before-first-checkpoint", lambda m, d, t: ["pretrain", "--out", str(t / "fresh"), "--resume"],
     "without --resume"),
    ("export-into-a-file", lambda m, d, t: ["export", "--model", str(m), "--out", text_file(t, "f", "x")], "f"),
    ("preset-unknown", lambda m, d, t: ["info", "--preset", "gpt5"], "gpt5"),
    ("eval-shots-word", lambda m, d, t: ["eval", "task", "--model", str(m), "--task", "shakespeare-cloze",
                                         "--shots", "few"], "shots"),
    ("pretrain-seed-past-int64", lambda m, d, t: ["pretrain", "--data", d, "--out", str(t / "r"), *TRAIN,
                                                  "--seed", str(2**64)], "seed"),
    ("pretrain-resume-and-overwrite", lambda m, d, t: ["pretrain", "--out", run_dir_with(m, t, "metrics.jsonl", b""),
                                                       "--resume", "--overwrite"], "give one of them"),
    ("config-file-unknown-model-key", lambda m, d, t: ["pretrain", "--data", d, "--out", str(t / "r"), *TRAIN, "--config",
                                                       text_file(t, "run.yaml", "model: {n_layers: 2}\n")], "n_layers"),
    # schemas checked below the top level: task files, task and fine-tuning data, checkpoint indexes
    ("task-type-list", lambda m, d, t: ["eval", "task", "--model", str(m), "--task", task_file(t, type=["choice"])],
     "field 'type' must be a non-empty string"),
    ("task-data-null", lambda m, d, t: ["eval", "task", "--model", str(m), "--task", task_file(t, data=None)],
     "field 'data' must be a non-empty string, got null"),
    ("task-prompt-unclosed", lambda m, d, t: ["eval", "task", "--model", str(m), "--task", task_file(t, prompt="{context")],
     "field 'prompt' is not a template"),
    ("task-stop-empty", lambda m, d, t: ["eval", "task", "--model", str(m), "--task", task_file(t, stop=[""])],
     "field 'stop' must be a list of non-empty strings"),
    ("task-stop-string", lambda m, d, t: ["eval", "task", "--model", str(m), "--task", task_file(t, stop="\n")],
     "field 'stop' must be a list of non-empty strings"),
    ("task-choices-list", lambda m, d, t: ["eval", "task", "--model", str(m), "--task", task_file(t, choices=[])],
     "field 'choices' must be a non-empty string"),
    ("task-answer-fraction", lambda m, d, t: ["eval", "task", "--model", str(m), "--task", task_file(
        t, [{"context": "a", "choices": ["b", "c"], "answer": 1.5}])], "d.jsonl:1: field 'answer' must be a whole number"),
    ("task-answer-true", lambda m, d, t: ["eval", "task", "--model", str(m), "--task", task_file(
        t, [{"context": "a", "choices": ["b", "c"], "answer": True}])], "got true"),
    ("task-answer-out-of-range", lambda m, d, t: ["eval", "task", "--model", str(m), "--task", task_file(
        t, [{"context": "a", "choices": ["b", "c"], "answer": 2}])], "d.jsonl:1: answer 2 is not the index"),
    ("task-choices-string", lambda m, d, t: ["eval", "task", "--model", str(m), "--task", task_file(
        t, [{"context": "a", "choices": "bc", "answer": 0}])], "field 'choices' must be a list of at least two"),
    ("task-same-input-twice", lambda m, d, t: ["eval", "task", "--model", str(m), "--task", task_file(
        t, [{"context": "a", "choices": ["b", "c"], "answer": 0}, {"context": "d", "choices": ["b", "c"], "answer": 0},
            {"context": "a", "choices": ["b", "c"], "answer": 1}])], "d.jsonl:3: the same input as line 1"),
    ("finetune-label-null", lambda m, d, t: finetune_args(t, m, "classify", '{"text": "a", "label": null}'),
     "a.jsonl:1: column 'label' must be a non-empty string or a whole number, got null"),
    ("finetune-answer-true", lambda m, d, t: finetune_args(t, m, "choice", '{"context": "a", "choices": ["b", "c"], '
                                                           '"answer": true}'), "column 'answer' must be a whole number"),
    ("finetune-valid-same-input-twice", lambda m, d, t: finetune_args(t, m, "classify", '{"text": "a", "label": "x"}\n'
                                                                      '{"text": "a", "label": "y"}'),
     "a.jsonl:2: the same input as line 1"),
    ("finetune-score-nan", lambda m, d, t: finetune_args(t, m, "similarity", '{"a": "x", "b": "y", "score": NaN}'),
     "column 'score' must be a finite number, got NaN"),
    ("hf-index-weight-map-number", lambda m, d, t: ["generate", "--model", sharded_hf_model(t, {"wte.weight": 3})],
     "must be a non-empty string, got 3"),
    # arguments and compressed files that end early
    ("argument-not-utf8", lambda m, d, t: ["generate", "--model", str(m), "--prompt", "caf\udce9"],
     "argument 5 'caf\\xe9' (after --prompt) is not valid UTF-8"),
    ("prepare-truncated-zst", lambda m, d, t: ["prepare", "--input", truncated(t, "cut.jsonl.zst"), "--tokenizer",
                                               "char", "--out", str(t / "o")], "cut.jsonl.zst: truncated"),
    ("prepare-truncated-gz", lambda m, d, t: ["prepare", "--input", truncated(t, "cut.jsonl.gz"), "--tokenizer",
                                              "char", "--out", str(t / "o")], "cut.jsonl.gz"),
]


@pytest.mark.parametrize("build, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_clean_line(build, fragment, model, char_data, tmp_path):
    args = build(model, char_data, tmp_path)
    result = gptkit(*args, cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode not in (0, None) and result.returncode > 0, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert lines and lines[-1].lower().startswith("error:"), result.stderr
    assert fragment in lines[-1], lines[-1]
    written = [p for out in ("o", "ft") for p in (tmp_path / out).rglob("*") if p.is_file()]
    assert not written, f"a refused input wrote {written}"
