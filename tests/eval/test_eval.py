import json
import logging
import math
import re

import pytest
import torch
import torch.nn.functional as F
import yaml
from click.testing import CliRunner

from gptkit import GptkitError, Tokenizer
from gptkit.cli.main import cli
from gptkit.eval import bundled_tasks, evaluate_task, load_task, perplexity
from gptkit.eval.metrics import exact_match, rouge, token_f1
from gptkit.eval.perplexity import sliding_windows
from gptkit.inference import SamplingConfig, generate_ids
from tests.conftest import tiny_model

TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"


@pytest.fixture(scope="module")
def char_model():
    tok = Tokenizer.char(TEXT + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ?!.,;:'\"- \n0123456789")
    return tiny_model(vocab_size=tok.vocab_size, block_size=32), tok


def logprobs_by_hand(model, ids):
    return F.log_softmax(model(torch.tensor([ids]))[0], -1)


# --- perplexity -----------------------------------------------------------------------------------

@pytest.mark.parametrize("n, block, stride", [(1, 8, 8), (50, 8, 8), (50, 8, 3), (50, 8, 1), (7, 16, 4)])
def test_sliding_windows_score_every_token_once(n, block, stride):
    windows = sliding_windows(n, block, stride)
    targets = [i for _, start, end in windows for i in range(start, end)]
    assert targets == list(range(n))
    assert all(end - ctx <= block + 1 for ctx, _, end in windows)


def test_perplexity_equals_hand_computation(char_model):
    model, tok = char_model
    ids = tok.encode(TEXT)
    # stride 1: every token gets the longest context the window allows (block tokens of input)
    result = perplexity(model, tok, TEXT, stride=1)
    nll = 0.0
    for i, target in enumerate(ids):
        context = ([tok.eot_id] + ids)[max(0, i + 1 - 32): i + 1]
        nll -= logprobs_by_hand(model, context)[-1, target].item()
    assert result["tokens"] == len(ids) and result["bytes"] == len(TEXT.encode())
    assert result["nll"] == pytest.approx(nll, rel=1e-5)
    assert result["perplexity"] == pytest.approx(math.exp(nll / len(ids)), rel=1e-5)
    assert result["bits_per_byte"] == pytest.approx(nll / math.log(2) / len(TEXT.encode()), rel=1e-5)
    assert result["word_perplexity"] == pytest.approx(math.exp(nll / len(TEXT.split())), rel=1e-5)


def test_longer_stride_means_less_context_and_higher_loss_on_average(char_model):
    model, tok = char_model
    full, half = perplexity(model, tok, TEXT * 3, stride=32), perplexity(model, tok, TEXT * 3, stride=16)
    assert full["windows"] < half["windows"] and full["tokens"] == half["tokens"]


# --- tasks ----------------------------------------------------------------------------------------

def write_task(tmp_path, spec: dict, rows: list[dict], train: list[dict] | None = None):
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if train is not None:
        (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
        spec = {**spec, "train": "train.jsonl"}
    (tmp_path / "task.yaml").write_text(json.dumps({"name": "t", "data": "data.jsonl", **spec}))
    return load_task(tmp_path / "task.yaml")


CHOICE_ROWS = [{"q": "to be or", "choices": ["not", "yes", "the"], "answer": 0},
               {"q": "that is the", "choices": ["question", "mind"], "answer": 0},
               {"q": "in the", "choices": ["mind", "sea", "to"], "answer": 2}]


def test_choice_accuracy_equals_hand_computation(char_model, tmp_path):
    model, tok = char_model
    spec = write_task(tmp_path, {"type": "choice", "prompt": "{q}"}, CHOICE_ROWS)
    result = evaluate_task(model, tok, spec, [0])["results"]["0"]["metrics"]
    correct = correct_norm = 0
    for row in CHOICE_ROWS:
        sums = []
        for choice in row["choices"]:
            ctx, cont = tok.encode(row["q"]), tok.encode(" " + choice)
            logp = logprobs_by_hand(model, ctx + cont)
            sums.append(sum(logp[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont)))
        correct += max(range(len(sums)), key=sums.__getitem__) == row["answer"]
        norm = [s / len(" " + c) for s, c in zip(sums, row["choices"])]
        correct_norm += max(range(len(norm)), key=norm.__getitem__) == row["answer"]
    assert result == {"acc": correct / 3, "acc_norm": correct_norm / 3}


def test_progress_bars_are_named_after_the_task_and_shots(char_model, tmp_path, capsys):
    model, tok = char_model
    spec = write_task(tmp_path, {"type": "choice", "prompt": "{q}"}, CHOICE_ROWS)
    evaluate_task(model, tok, spec, [0, 1], progress=True)
    bars = capsys.readouterr().err
    assert f"{spec.name} K=0" in bars and f"{spec.name} K=1" in bars and "scoring" not in bars


def test_last_word_accuracy_and_perplexity_by_hand(char_model, tmp_path):
    model, tok = char_model
    rows = [{"context": "to be or not to", "answer": "be"}, {"context": "that is the", "answer": "question"}]
    spec = write_task(tmp_path, {"type": "last_word", "prompt": "{context}"}, rows)
    result = evaluate_task(model, tok, spec, [0])["results"]["0"]["metrics"]
    nll = n = hits = 0
    for row in rows:
        ctx, cont = tok.encode(row["context"]), tok.encode(" " + row["answer"])
        logp = logprobs_by_hand(model, ctx + cont)
        rows_logp = [logp[len(ctx) - 1 + j] for j in range(len(cont))]
        nll -= sum(r[t].item() for r, t in zip(rows_logp, cont))
        n += len(cont)
        hits += all(r.argmax().item() == t for r, t in zip(rows_logp, cont))
    assert result["acc"] == hits / 2
    assert result["ppl"] == pytest.approx(math.exp(nll / n), rel=1e-5)


def test_generation_metrics_from_greedy_answers(char_model, tmp_path):
    model, tok = char_model
    rows = [{"q": "Q: to be? A:", "answer": "not to be"}, {"q": "Q: the? A:", "answer": "question"}]
    spec = write_task(tmp_path, {"type": "generate", "prompt": "{q}", "max_new_tokens": 8, "stop": ["\n"],
                                 "metrics": ["exact_match", "f1", "rougeL"]}, rows)
    result = evaluate_task(model, tok, spec, [0])["results"]["0"]["metrics"]
    answers = generate_ids(model, [tok.encode(r["q"]) for r in rows], SamplingConfig(max_new_tokens=8, temperature=0),
                           tok.eot_id)
    texts = [tok.decode(a).split("\n")[0].strip() for a in answers]
    assert result["f1"] == pytest.approx(sum(token_f1(t, r["answer"]) for t, r in zip(texts, rows)) / 2)
    assert result["rougeL"] == pytest.approx(sum(rouge(t, r["answer"])["rougeL"] for t, r in zip(texts, rows)) / 2)


def test_batched_equals_unbatched(char_model, tmp_path):
    model, tok = char_model
    spec = write_task(tmp_path, {"type": "choice", "prompt": "{q}"}, CHOICE_ROWS)
    a = evaluate_task(model, tok, spec, [0, 1], batch_size=1)["results"]
    b = evaluate_task(model, tok, spec, [0, 1], batch_size=64)["results"]
    assert a == b


def test_few_shot_prompts_are_seeded_and_capped_by_the_context(char_model, tmp_path, caplog):
    model, tok = char_model  # context 32 characters: most demonstrations cannot fit
    spec = write_task(tmp_path, {"type": "choice", "prompt": "{q}"}, CHOICE_ROWS, train=CHOICE_ROWS * 3)
    with caplog.at_level(logging.INFO, logger="gptkit"):
        result = evaluate_task(model, tok, spec, [0, 1, 5], seed=3)
    assert "examples fitted on average" in caplog.text
    assert result["results"]["0"]["mean_shots"] == 0 and result["results"]["5"]["mean_shots"] < 5
    assert evaluate_task(model, tok, spec, [0, 1, 5], seed=3)["results"] == result["results"]


def test_demonstrations_never_include_the_query(tmp_path):
    from gptkit.eval.runner import draw_demos

    pool = [{"i": i} for i in range(5)]
    for seed in range(20):
        assert pool[2] not in draw_demos(pool, 4, seed, exclude=pool[2])


# --- bad task files -------------------------------------------------------------------------------

def test_task_file_missing_a_field(tmp_path):
    (tmp_path / "t.yaml").write_text("name: x\ntype: choice\n")
    with pytest.raises(GptkitError, match=r"t\.yaml: missing field 'data'"):
        load_task(tmp_path / "t.yaml")


def test_unknown_metric_is_named(tmp_path):
    (tmp_path / "t.yaml").write_text("name: x\ntype: choice\ndata: d.jsonl\nmetrics: [acc, bleu]\n")
    with pytest.raises(GptkitError, match=r"field 'metrics' has unknown metric\(s\) bleu"):
        load_task(tmp_path / "t.yaml")


@pytest.mark.parametrize("fields, message", [
    ({"type": ["choice"]}, "field 'type' must be a non-empty string, got [\"choice\"]"),
    ({"data": None}, "field 'data' must be a non-empty string, got null"),
    ({"train": ""}, "field 'train' must be a non-empty string"),
    ({"stop": "\n"}, "field 'stop' must be a list of non-empty strings"),
    ({"stop": [""]}, "field 'stop' must be a list of non-empty strings"),
    ({"choices": []}, "field 'choices' must be a non-empty string, got []"),
    ({"metrics": []}, "field 'metrics' must be a non-empty list"),
    ({"max_new_tokens": True}, "field 'max_new_tokens' must be a whole number >= 1, got true"),
    ({"prompt": "{context"}, "field 'prompt' is not a template"),
    ({"prompt": "{0} and {}"}, "field 'prompt' has placeholder {0}, which names no field"),
    ({"prompt": "{q.upper}"}, "field 'prompt' has placeholder {q.upper}"),
    ({1: "x"}, "unknown field(s) 1"),
])
def test_task_file_fields_of_the_wrong_kind_are_named(tmp_path, fields, message):
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"name": "x", "type": "choice", "data": "d.jsonl", **fields}))
    with pytest.raises(GptkitError, match=r"t\.yaml: .*" + re.escape(message)):
        load_task(tmp_path / "t.yaml")


@pytest.mark.parametrize("spec, rows, message", [
    ({"type": "choice"}, [{"q": "a", "choices": ["x", "y"], "answer": 1.5}], "data.jsonl:1: field 'answer' must be a whole number"),
    ({"type": "choice"}, [{"q": "a", "choices": ["x", "y"], "answer": True}], "field 'answer' must be a whole number, got true"),
    ({"type": "choice"}, [{"q": "a", "choices": ["x", "y"], "answer": -1}], "data.jsonl:1: answer -1 is not the index"),
    ({"type": "choice"}, [{"q": "a", "choices": "xy", "answer": 0}], "field 'choices' must be a list of at least two"),
    ({"type": "choice"}, [{"q": None, "choices": ["x", "y"], "answer": 0}], "field 'q' must be a string, got null"),
    ({"type": "choice", "prompt": "{q:d}"}, [{"q": "a", "choices": ["x", "y"], "answer": 0}], "prompt cannot be filled in"),
    ({"type": "last_word"}, [{"q": "a", "answer": ""}], "field 'answer' must be a non-empty string"),
    ({"type": "choice"}, CHOICE_ROWS + [{**CHOICE_ROWS[1], "answer": 1}], "data.jsonl:4: the same input as line 2"),
])
def test_bad_examples_name_file_line_and_field(char_model, tmp_path, spec, rows, message):
    model, tok = char_model
    spec = write_task(tmp_path, {"prompt": "{q}", **spec}, rows)
    with pytest.raises(GptkitError, match=re.escape(message)):
        evaluate_task(model, tok, spec, [0])


def test_few_shot_pool_may_repeat_an_example(char_model, tmp_path):
    model, tok = char_model
    spec = write_task(tmp_path, {"type": "choice", "prompt": "{q}"}, CHOICE_ROWS, train=CHOICE_ROWS * 2)
    assert evaluate_task(model, tok, spec, [1])["examples"] == 3


def test_example_missing_a_template_field_names_file_and_line(char_model, tmp_path):
    model, tok = char_model
    spec = write_task(tmp_path, {"type": "choice", "prompt": "{question}"}, CHOICE_ROWS)
    with pytest.raises(GptkitError, match=r"data\.jsonl:1: missing field\(s\) question"):
        evaluate_task(model, tok, spec, [0])


def test_fewer_examples_than_k(char_model, tmp_path):
    model, tok = char_model
    spec = write_task(tmp_path, {"type": "choice", "prompt": "{q}"}, CHOICE_ROWS)
    with pytest.raises(GptkitError, match=r"data\.jsonl has 2 examples to draw from, fewer than K=3"):
        evaluate_task(model, tok, spec, [0, 3])


def test_context_that_cannot_fit_one_example(char_model, tmp_path):
    model, tok = char_model
    rows = [{"q": c * 25, "choices": ["a", "b"], "answer": 0} for c in "xyz"]
    spec = write_task(tmp_path, {"type": "choice", "prompt": "{q}"}, rows)
    with pytest.raises(GptkitError, match=r"task\.yaml: the context of 32 tokens cannot fit even one example"):
        evaluate_task(model, tok, spec, [1])


# --- bundled tasks and the command ----------------------------------------------------------------

def test_bundled_tasks_load_with_their_examples():
    from gptkit.eval.tasks import read_examples

    tasks = bundled_tasks()
    assert {"shakespeare-nextline", "shakespeare-lastword", "shakespeare-cloze", "shakespeare-verse",
            "shakespeare-whichplay"} <= set(tasks)
    for name in tasks:
        spec = load_task(name)
        assert len(read_examples(spec, spec.data)) >= 50 and len(read_examples(spec, spec.train)) >= 50


def test_metric_normalisation():
    assert exact_match("The Tempest.", "tempest") == 1.0
    assert token_f1("the tragedy of hamlet", "hamlet prince") == pytest.approx(0.4)  # P 1/3, R 1/2
    assert rouge("the cat sat", "the cat sat")["rougeL"] == 1.0


def test_eval_commands_write_json_and_plot(trained_tiny, tmp_path):
    runner = CliRunner()
    out = tmp_path / "r.json"
    write_task(tmp_path, {"type": "choice", "prompt": "{q}"}, CHOICE_ROWS)
    result = runner.invoke(cli, ["eval", "task", "--model", trained_tiny, "--task", str(tmp_path / "task.yaml"),
                                 "--shots", "0,1", "--limit", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "acc_norm" in result.stdout and (tmp_path / "r.png").exists()
    saved = json.loads(out.read_text())["tasks"][0]
    assert set(saved["results"]) == {"0", "1"} and saved["settings"]["shots"] == [0, 1]
    (tmp_path / "t.txt").write_text(TEXT * 4)
    result = runner.invoke(cli, ["eval", "perplexity", "--model", trained_tiny, "--data", str(tmp_path / "t.txt"),
                                 "--out", str(tmp_path / "p.json")])
    assert result.exit_code == 0, result.output
    assert {"perplexity", "bits_per_byte", "tokens"} <= set(json.loads((tmp_path / "p.json").read_text()))
