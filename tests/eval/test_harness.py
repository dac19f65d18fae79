"""The lm-evaluation-harness adapter, run by the real harness on local task files (no downloads)."""

import json
import os

import pytest

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
lm_eval = pytest.importorskip("lm_eval")

from lm_eval.tasks import TaskManager  # noqa: E402

from gptkit import load  # noqa: E402
from gptkit.eval import evaluate_task, load_task, perplexity  # noqa: E402
from gptkit.eval.harness import GptkitLM  # noqa: E402
from gptkit.eval.tasks import read_examples  # noqa: E402

pytestmark = pytest.mark.slow


class LocalTaskManager(TaskManager):
    """The harness's task index of the given folder only: indexing its ~15,000 built-in tasks takes
    15 s of CPU each time, and these tests use none of them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, include_defaults=False, **kwargs)


@pytest.fixture(scope="module")
def harness_tasks(tmp_path_factory):
    """Local lm-eval tasks over short examples of the bundled cloze task and a few documents."""
    folder = tmp_path_factory.mktemp("lm_eval_tasks")
    spec = load_task("shakespeare-cloze")
    rows = [r for r in read_examples(spec, spec.data) if len(r["context"]) < 60][:6]
    rows = rows or [{"context": "O", "choices": ["Romeo", "romeo"], "answer": 0}]
    (folder / "cloze.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "docs.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in
                                               ["Shall I compare thee to a summer's day?", "To be, or not to be."]))
    common = {"dataset_path": "json", "test_split": "test"}
    tasks = {
        "gptkit_cloze": {**common, "dataset_kwargs": {"data_files": {"test": str(folder / "cloze.jsonl")}},
                         "output_type": "multiple_choice", "doc_to_text": "{{context}}\n", "doc_to_choice": "{{choices}}",
                         "doc_to_target": "{{answer}}", "target_delimiter": "", "metric_list": [{"metric": "acc"}]},
        "gptkit_docs": {**common, "dataset_kwargs": {"data_files": {"test": str(folder / "docs.jsonl")}},
                        "output_type": "loglikelihood_rolling", "doc_to_text": "", "doc_to_target": "{{text}}",
                        "metric_list": [{"metric": "bits_per_byte"}]},
        "gptkit_gen": {**common, "dataset_kwargs": {"data_files": {"test": str(folder / "docs.jsonl")}},
                       "output_type": "generate_until", "doc_to_text": "{{text}}", "doc_to_target": "{{text}}",
                       "generation_kwargs": {"until": ["\n"], "max_gen_toks": 8, "do_sample": False},
                       "metric_list": [{"metric": "exact_match"}]},
    }
    for name, task in tasks.items():
        (folder / f"{name}.yaml").write_text(json.dumps({"task": name, **task}))
    return folder, rows


def run_harness(trained_tiny, folder, task):
    results = lm_eval.simple_evaluate(model=GptkitLM(trained_tiny, device="cpu"), tasks=[task],
                                      task_manager=LocalTaskManager(include_path=str(folder)), bootstrap_iters=0)
    return results["results"][task]


def test_multiple_choice_through_the_harness_equals_gptkit(trained_tiny, harness_tasks, tmp_path):
    folder, rows = harness_tasks
    ours_spec = {"name": "c", "type": "choice", "data": str(folder / "cloze.jsonl"), "prompt": "{context}\n",
                 "answer_prefix": "", "metrics": ["acc"]}
    (tmp_path / "c.yaml").write_text(json.dumps(ours_spec))
    model, tok = load(trained_tiny)
    ours = evaluate_task(model, tok, load_task(tmp_path / "c.yaml"), [0])["results"]["0"]["metrics"]["acc"]
    assert run_harness(trained_tiny, folder, "gptkit_cloze")["acc,none"] == pytest.approx(ours)


def test_rolling_loglikelihood_gives_gptkit_bits_per_byte(trained_tiny, harness_tasks):
    folder, _ = harness_tasks
    model, tok = load(trained_tiny)
    docs = ["Shall I compare thee to a summer's day?", "To be, or not to be."]
    nll = sum(perplexity(model, tok, d, stride=model.config.block_size)["nll"] for d in docs)
    expected = nll / sum(len(d.encode()) for d in docs) / 0.6931471805599453
    assert run_harness(trained_tiny, folder, "gptkit_docs")["bits_per_byte,none"] == pytest.approx(expected, rel=1e-4)


def test_generate_until_runs_through_the_harness(trained_tiny, harness_tasks):
    folder, _ = harness_tasks
    assert 0.0 <= run_harness(trained_tiny, folder, "gptkit_gen")["exact_match,none"] <= 1.0


def test_the_harness_command_runs_a_local_task(trained_tiny, harness_tasks, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from gptkit.cli.main import cli

    monkeypatch.setattr(lm_eval.tasks, "TaskManager", LocalTaskManager)  # what the command imports
    folder, _ = harness_tasks
    out = tmp_path / "h.json"
    result = CliRunner().invoke(cli, ["eval", "harness", "--model", trained_tiny, "--task", "gptkit_cloze",
                                      "--include-path", str(folder), "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "gptkit_cloze" in result.stdout and "acc,none" in json.loads(out.read_text())["gptkit_cloze"]
    result = CliRunner().invoke(cli, ["eval", "harness", "--model", trained_tiny, "--task", "no_such_task",
                                      "--include-path", str(folder)])
    assert result.exit_code == 2 and "unknown harness task(s) no_such_task" in result.stderr
