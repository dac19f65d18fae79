"""The real `gptkit` command, in process through click's runner, plus one end-to-end subprocess."""

import dataclasses
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gptkit.cli.main import cli
from gptkit.train_config import DialogueTrainConfig, FinetuneConfig, TrainConfig, required

TINY = ["--preset", "tiny", "--max-steps", "4", "--batch-size", "4", "--block-size", "32",
        "--eval-every", "2", "--eval-batches", "1", "--sample-tokens", "0", "--quiet"]


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def assert_clean_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def trained(char_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli_run")
    result = run("pretrain", "--data", char_data, "--out", str(out), *TINY)
    assert result.exit_code == 0, result.output
    return out


def test_pretrain_reports_loss_baseline_and_files(trained):
    assert (trained / "loss.png").exists() and (trained / "latest").exists()


def test_generate_samples_from_a_run_directory(trained):
    result = run("generate", "--model", str(trained), "--prompt", "Shall I", "--max-new-tokens", "20",
                 "--seed", "1", "--num-samples", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("Shall I") == 2 and "--- sample 2 ---" in result.stdout
    again = run("generate", "--model", str(trained), "--prompt", "Shall I", "--max-new-tokens", "20",
                "--seed", "1", "--num-samples", "2")
    assert again.stdout == result.stdout


def test_generate_greedy_is_deterministic(trained):
    a = run("generate", "--model", str(trained), "--prompt", "O", "--greedy", "--max-new-tokens", "15", "--no-stop")
    b = run("generate", "--model", str(trained), "--prompt", "O", "--greedy", "--max-new-tokens", "15", "--no-stop")
    assert a.exit_code == 0 and a.stdout == b.stdout and len(a.stdout.strip()) >= 10


def test_generate_says_which_characters_the_vocabulary_cannot_read(trained, caplog):
    with caplog.at_level("WARNING", logger="gptkit"):
        result = run("generate", "--model", str(trained), "--prompt", "Shall 你 I 你", "--max-new-tokens", "2")
    assert result.exit_code == 0, result.output
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "not in this model's vocabulary (read as unknown): 你"]


def test_info_counts_175b_as_json():
    result = run("info", "--preset", "gpt3-175b", "--json")
    assert json.loads(result.stdout)["parameters"] == 174_604_259_328


def test_info_lists_presets():
    assert "gpt2-xl" in run("info", "--list").stdout


def test_prepare_and_tokenizer_train_from_files(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    from gptkit.data import shakespeare

    (corpus / "a.txt").write_text(next(w["text"] for w in shakespeare() if w["name"] == "sonnets"))
    (corpus / "b.jsonl").write_text("\n".join(json.dumps({"text": f"line {i} of the play"}) for i in range(40)))
    result = run("tokenizer", "train", "--input", str(corpus), "--vocab-size", "300", "--out", str(tmp_path / "tok"))
    assert result.exit_code == 0, result.output
    result = run("prepare", "--input", str(corpus), "--tokenizer", str(tmp_path / "tok"), "--out",
                 str(tmp_path / "data"), "--workers", "2", "--val-fraction", "0.1")
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "data" / "meta.json").read_text())
    assert meta["vocab_size"] == 300 and meta["splits"]["train"]["documents"] + meta["splits"]["val"]["documents"] == 41


def test_prepare_bundled_shakespeare_holds_out_whole_plays(tmp_path):
    result = run("prepare", "--input", "shakespeare", "--tokenizer", "char", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["splits"]["train"]["documents"] == 39 and meta["splits"]["val"]["documents"] == 3


# --- bad input: one clear line, exit status 2, never a traceback ---------------------------------

def test_missing_corpus(tmp_path):
    assert_clean_error(run("prepare", "--input", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "d")),
                       "no input files found")


def test_empty_corpus(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    assert_clean_error(run("prepare", "--input", str(tmp_path / "empty.txt"), "--out", str(tmp_path / "d")),
                       "the corpus is empty")


def test_unknown_preset(char_data, tmp_path):
    assert_clean_error(run("pretrain", "--data", char_data, "--out", str(tmp_path), "--preset", "gpt9", "--quiet"),
                       "unknown preset 'gpt9'", "gpt2-medium")


@pytest.mark.parametrize("command", [
    ["pretrain"],
    ["dialogue", "train"],
    ["finetune", "--model", "m", "--task", "classify", "--train", "t.jsonl", "--valid", "v.jsonl"],
])
def test_every_training_command_takes_the_shared_training_flags(command, tmp_path):
    # --dtype, --parallel and --compile-mode reach each command's TrainConfig, which checks them first.
    result = run(*command, "--out", str(tmp_path / "run"), "--dtype", "fp32", "--parallel", "fsdp",
                 "--compile-mode", "reduce-overhead", "--quiet")
    assert_clean_error(result, "--compile-mode reduce-overhead is a mode of torch.compile: add --compile")


def test_n_embd_not_divisible_by_n_head(char_data, tmp_path):
    (tmp_path / "cfg.yaml").write_text("model:\n  n_head: 3\n")
    assert_clean_error(run("pretrain", "--config", str(tmp_path / "cfg.yaml"), "--data", char_data,
                           "--out", str(tmp_path / "r"), *TINY), "must be divisible by n_head")


def test_truncated_shard(char_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(char_data, data)
    shard = data / "train-00000.bin"
    shard.write_bytes(shard.read_bytes()[:-10])
    assert_clean_error(run("pretrain", "--data", str(data), "--out", str(tmp_path / "r"), *TINY), "truncated")


def test_not_a_shard(char_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(char_data, data)
    (data / "val-00000.bin").write_bytes(b"hello world, not tokens" * 10)
    assert_clean_error(run("pretrain", "--data", str(data), "--out", str(tmp_path / "r"), *TINY), "bad magic")


def test_truncated_checkpoint(trained, tmp_path):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(trained / "checkpoints" / (trained / "latest").read_text().strip(), ckpt)
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert_clean_error(run("generate", "--model", str(ckpt), "--prompt", "x"), "truncated or corrupt")


def test_tokenizer_that_does_not_match_the_model(trained, tmp_path):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(trained / "checkpoints" / (trained / "latest").read_text().strip(), ckpt)
    from gptkit import Tokenizer

    Tokenizer.gpt2().save(ckpt)  # 50,257 tokens next to a model of a few dozen
    assert_clean_error(run("generate", "--model", str(ckpt)), "the tokenizer has 50257 tokens")


def test_resume_without_checkpoint(char_data, tmp_path):
    assert_clean_error(run("pretrain", "--data", char_data, "--out", str(tmp_path / "new"), "--resume", *TINY),
                       "holds no run to resume", "start it without --resume")


def test_generate_from_a_directory_without_checkpoint(tmp_path):
    assert_clean_error(run("generate", "--model", str(tmp_path)), "no checkpoint in")


def test_the_installed_command_runs(tmp_path):
    # -X importtime: an unknown preset is said before PyTorch loads (seconds of a typo's answer).
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "gptkit", "info", "--preset", "nope"],
                            capture_output=True, text=True)
    stderr = "".join(line for line in result.stderr.splitlines(keepends=True) if not line.startswith("import time:"))
    assert result.returncode == 2 and stderr.startswith("error: unknown preset") and "Traceback" not in stderr
    assert not re.search(r"\|\s+torch\b", result.stderr)


def _command(*names):
    command = cli
    for name in names:
        command = command.commands[name]
    return command


@pytest.mark.parametrize(("names", "cls"), [
    (["pretrain"], TrainConfig), (["finetune"], FinetuneConfig), (["dialogue", "train"], DialogueTrainConfig),
])
def test_each_training_flag_shows_its_dataclass_default(names, cls):
    options = {p.name: p for p in _command(*names).params}
    flags = [f for f in dataclasses.fields(cls) if f.name in options]
    assert len(flags) > 15  # the config's fields are the command's flags
    for f in flags:
        option = options[f.name]
        assert option.default is None  # not given: the resumed run's, the config file's or the dataclass's value stands
        shown = re.search(r"\[default: (.+)\]$", option.help)
        if required(f):
            assert option.help.endswith("[required]")
        elif f.default is None or (option.is_flag and not option.secondary_opts):
            assert shown is None, f.name
        elif isinstance(f.default, bool):
            assert shown[1] == (option.opts[0] if f.default else option.secondary_opts[0]), f.name
        else:
            assert type(f.default)(shown[1]) == f.default, f.name


@pytest.mark.parametrize("names", [["pretrain"], ["finetune"], ["dialogue", "train"]])
def test_help_of_a_training_command_does_not_load_torch(names):
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "gptkit", *names, "--help"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "[default: " in result.stdout
    assert not re.search(r"\|\s+torch\b", result.stderr)



@pytest.mark.parametrize("module", ["gptkit.train.plot", "gptkit.train.trainer", "gptkit.eval.report"])
def test_matplotlib_is_imported_to_draw_not_with_the_module(module, monkeypatch):
    # matplotlib takes a second or more to import: a command that stops before plotting (a refused
    # input, a failed run) does not pay it. A fresh copy of the module runs with matplotlib unimportable.
    for name in ["matplotlib", *(m for m in sys.modules if m.startswith("matplotlib."))]:
        monkeypatch.setitem(sys.modules, name, None)
    spec = importlib.util.find_spec(module)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))  # the imported module stays as it was
