"""Each task type end to end through `gptkit finetune` and `gptkit predict`, and the errors users see."""

import gzip
import json

import pytest
from click.testing import CliRunner

from gptkit.cli.main import cli
from gptkit.finetune import FinetuneConfig, finetune
from tests.cli.test_cli import assert_clean_error

FAST = ["--lr", "3e-3", "--batch-size", "16", "--epochs", "2", "--quiet"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("task", ["classify", "entail", "similarity", "choice", "regression"])
def test_each_task_fine_tunes_and_predicts_end_to_end(task, task_files, base_model, tmp_path):
    kind = "similarity" if task == "regression" else task
    train, valid = task_files[task]
    result = run("finetune", "--model", base_model, "--task", kind, "--train", train, "--valid", valid,
                 "--out", tmp_path, *FAST)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "metrics.json").read_text())
    key = "pearson" if task == "regression" else "accuracy"
    assert report["metric"] == key and [r["epoch"] for r in report["history"]] == [1.0, 2.0]
    assert report["best"][key] == max(r[key] for r in report["history"])
    assert (report["majority_baseline"] is None) == (task == "regression")
    assert {"head.json", "head.safetensors", "config.json", "model.safetensors", "vocab.json"} <= {p.name for p in tmp_path.iterdir()}

    predicted = run("predict", "--model", tmp_path, "--input", valid)
    results = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert len(results) == 32
    summary = predicted.stderr.splitlines()[-1]  # after the progress bar
    assert summary.startswith("32 examples; ") and ("scores mean" if task == "regression" else "predicted ") in summary
    if task == "regression":
        assert all(isinstance(r["score"], float) for r in results)
    else:
        probs = results[0]["probabilities"]
        assert sum(probs.values() if isinstance(probs, dict) else probs) == pytest.approx(1.0, abs=1e-5)
        assert len(probs) == {"classify": 4, "entail": 3, "similarity": 2, "choice": 4}[task]


def test_fine_tuning_learns_and_the_lm_loss_term_counts(task_files, base_model, tmp_path):
    rows = task_files["classify"][0].read_text().splitlines(keepends=True)[:16]
    small = tmp_path / "small.jsonl"
    small.write_text("".join(rows))

    def losses(lm_coef):
        out = tmp_path / str(lm_coef)
        finetune(FinetuneConfig(task="classify", init_from=str(base_model), train=str(small), valid=str(small), out=str(out),
                                lm_coef=lm_coef,
                                lr=1e-2, batch_size=16, epochs=30, eval_every=30), progress=False)
        return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]

    without, with_lm = losses(0.0), losses(0.5)
    assert sum(without[-5:]) / 5 < sum(without[:5]) / 5 - 0.3  # L2 falls: the head fits 16 examples
    assert with_lm[0] > without[0] + 0.5 * 3.0  # λ·L1 of an untrained model (about λ·ln(vocab)) is in the loss


def test_early_stopping_stops_when_the_metric_does_not_improve(task_files, base_model, tmp_path):
    train, valid = task_files["classify"]
    report = finetune(FinetuneConfig(task="classify", init_from=str(base_model), train=str(train), valid=str(valid),
                                     out=str(tmp_path), lr=1e-12,
                                     batch_size=16, epochs=10, eval_every=2, patience=2), progress=False)
    assert report["stopped_early"] and [r["step"] for r in report["history"]] == [2, 4, 6]


def test_lr_schedule_is_linear_warmup_then_linear_decay(task_files, base_model, tmp_path):
    train, valid = task_files["classify"]
    report = finetune(FinetuneConfig(task="classify", init_from=str(base_model), train=str(train), valid=str(valid),
                                     out=str(tmp_path), lr=1e-3,
                                     batch_size=16, epochs=2, warmup_steps=2), progress=False)
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert report["best"] is not None
    assert lrs == pytest.approx([1e-3 * f for f in (1 / 2, 1, 1, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6)])  # 0 at step 8


@pytest.mark.parametrize("case, message", [
    ("missing", "train.jsonl:2: missing column 'label'"),
    ("empty", "train.jsonl is empty"),
    ("unseen", "valid.jsonl:2: label 'z' never appears in the training file"),
])
def test_bad_input_is_one_line_naming_file_and_line(case, message, base_model, tmp_path):
    good = '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n'
    train = {"missing": '{"text": "a", "label": "x"}\n{"text": "b"}\n', "empty": "", "unseen": good}[case]
    valid = good.replace('"y"', '"z"') if case == "unseen" else good
    (tmp_path / "train.jsonl").write_text(train)
    (tmp_path / "valid.jsonl").write_text(valid)
    result = run("finetune", "--model", base_model, "--task", "classify", "--train", tmp_path / "train.jsonl",
                 "--valid", tmp_path / "valid.jsonl", "--out", tmp_path / "out", "--quiet")
    assert_clean_error(result, message)


def test_choice_files_with_different_numbers_of_choices_are_an_error(base_model, tmp_path):
    (tmp_path / "c.jsonl").write_text('{"context": "a", "choices": ["x", "y"], "answer": 0}\n'
                                      '{"context": "b", "choices": ["x", "y", "z"], "answer": 1}\n')
    result = run("predict", "--model", base_model, "--input", tmp_path / "c.jsonl")
    assert_clean_error(result, "holds no task head")
    result = run("finetune", "--model", base_model, "--task", "choice", "--train", tmp_path / "c.jsonl",
                 "--valid", tmp_path / "c.jsonl", "--out", tmp_path / "out", "--quiet")
    assert_clean_error(result, "c.jsonl:2: 3 choices, but", "c.jsonl:1 has 2")


def test_an_interrupted_fine_tuning_run_resumes_exactly(task_files, base_model, tmp_path):
    train, valid = task_files["classify"]
    args = ["finetune", "--model", base_model, "--task", "classify", "--train", train, "--valid", valid,
            "--lr", "3e-3", "--batch-size", "16", "--epochs", "3", "--patience", "5", "--quiet"]
    full, part = tmp_path / "full", tmp_path / "part"
    assert run(*args, "--out", full).exit_code == 0
    assert run(*args, "--out", part).exit_code == 0
    epoch = json.loads((part / "metrics.json").read_text())["history"][1]["step"]
    (part / "latest").write_text(f"step-{epoch:07d}\n")  # as if killed after the second epoch's checkpoint
    logged = [json.loads(line) for line in (part / "metrics.jsonl").read_text().splitlines()]
    (part / "metrics.jsonl").write_text("".join(json.dumps({**r, "before": True}) + "\n" for r in logged))
    resumed = run(*args, "--out", part, "--resume")
    assert resumed.exit_code == 0, resumed.output

    a = [json.loads(line) for line in (full / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(line) for line in (part / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("before", False) for r in b] == [r["step"] <= epoch for r in a]  # resumed, not restarted
    assert max(abs(x["loss"] - y["loss"]) for x, y in zip(a, b)) < 1e-5
    history = [json.loads((d / "metrics.json").read_text())["history"] for d in (full, part)]
    assert [h["accuracy"] for h in history[0]] == pytest.approx([h["accuracy"] for h in history[1]])


def test_resume_continues_with_the_runs_saved_settings(task_files, base_model, tmp_path):
    train, valid = task_files["entail"]
    first = run("finetune", "--model", base_model, "--task", "entail", "--train", train, "--valid", valid, "--out", tmp_path,
                "--lr", "3e-3", "--lm-coef", "0.25", "--batch-size", "16", "--epochs", "2", "--seed", "5",
                "--max-steps", "2", "--quiet")
    assert first.exit_code == 0, first.output
    resumed = run("finetune", "--out", tmp_path, "--resume", "--max-steps", "4", "--quiet")  # nothing else repeated
    assert resumed.exit_code == 0, resumed.output

    saved = json.loads((tmp_path / "train_config.json").read_text())
    assert {k: saved[k] for k in ("task", "train", "valid", "init_from", "lr", "lm_coef", "batch_size", "epochs", "seed",
                                  "max_steps")} == {"task": "entail", "train": str(train), "valid": str(valid),
                                                    "init_from": str(base_model), "lr": 3e-3, "lm_coef": 0.25,
                                                    "batch_size": 16, "epochs": 2, "seed": 5, "max_steps": 4}
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [1, 2, 3, 4]
    assert max(r["lr"] for r in logged) == pytest.approx(3e-3)  # the saved peak rate, not the default 6.25e-5


def test_a_config_file_supplies_finetune_keys_as_it_does_pretrains(task_files, base_model, tmp_path):
    train, valid = task_files["classify"]
    (tmp_path / "ft.yaml").write_text(f"init_from: {base_model}\ntask: classify\ntrain: {train}\nvalid: {valid}\n"
                                      "lr: 0.003\nbatch_size: 16\nmax_steps: 1\n")
    result = run("finetune", "--config", tmp_path / "ft.yaml", "--out", tmp_path / "ft", "--lr", "0.002", "--quiet")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "ft" / "train_config.json").read_text())
    assert (saved["task"], saved["train"], saved["lr"], saved["batch_size"]) == ("classify", str(train), 0.002, 16)


def test_resume_without_a_run_or_a_required_flag_is_one_line(tmp_path):
    assert_clean_error(run("finetune", "--out", tmp_path, "--resume", "--quiet"), "holds no run to resume")
    assert_clean_error(run("finetune", "--out", tmp_path, "--task", "classify", "--quiet"),
                       "missing --model, --train, --valid")


def test_bundled_sets_are_named_as_the_bundled_corpus_is(base_model, tmp_path, monkeypatch):
    # --train play / --valid play / --input play: the bundled set's train, valid and test splits.
    from gptkit.finetune.tasks import bundled_task, task_file

    assert [task_file("play", s) for s in ("train", "valid", "test")] == [bundled_task("play", s) for s in
                                                                          ("train", "valid", "test")]
    (tmp_path / "play").write_text("")  # a file of that name is the user's, and wins
    monkeypatch.chdir(tmp_path)
    assert task_file("play", "train") == tmp_path.joinpath("play").relative_to(tmp_path)
    monkeypatch.chdir(base_model.parent)
    result = run("finetune", "--model", base_model, "--task", "classify", "--train", "play", "--valid", "play",
                 "--out", tmp_path / "ft", "--max-steps", "1", "--batch-size", "4", "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "ft" / "train_config.json").read_text())["train"] == "play"
    predicted = run("predict", "--model", tmp_path / "ft", "--input", "play", "--quiet")
    with gzip.open(bundled_task("play", "test")) as f:
        assert len(predicted.stdout.splitlines()) == len(f.readlines())
