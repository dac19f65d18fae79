"""`gptkit dialogue train` and `gptkit chat` through click: reports, MMI, and one-line errors."""

import json

from click.testing import CliRunner

from gptkit import GPT, GPTConfig
from gptkit.cli.main import cli
from gptkit.tokenizer import Tokenizer
from tests.chat.conftest import tiny_train_args
from tests.cli.test_cli import assert_clean_error


def run(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_train_reports_filters_and_examples(dialogue_file, tmp_path):
    result = run(*tiny_train_args(dialogue_file, tmp_path / "run", "--max-history", "1", "--blocklist",
                                  str(_write(tmp_path / "block.txt", "king\n"))))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "3 sessions, 2 kept (6 turns)" and "  removed 1 sessions, 3 turns: blocklisted phrase" in lines
    assert "0 responses too long for the context; 4 training and 0 validation examples" in lines  # 2 a session
    assert lines.index("  removed 1 sessions, 3 turns: blocklisted phrase") < len(lines) - 1  # before the training
    assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 3


def test_chat_with_mmi_shows_every_hypothesis_with_both_scores(chat_models):
    forward, backward = chat_models
    result = run("chat", "--model", str(forward), "--mmi-model", str(backward), "--num-hypotheses", "3",
                 "--max-new-tokens", "6", "--seed", "1", "--verbose", input="Where is the king?\n/quit\n")
    assert result.exit_code == 0, result.output
    scores = [line for line in result.output.splitlines() if line.strip().startswith("backward")]
    assert 1 <= len(scores) <= 3 and all("forward" in line for line in scores)
    backward_scores = [float(line.split()[1]) for line in scores]
    assert backward_scores == sorted(backward_scores, reverse=True)


def test_a_backward_model_with_another_tokenizer_is_a_clean_error(chat_models, tmp_path):
    other = Tokenizer.char("xyz")
    GPT(GPTConfig.preset("tiny", vocab_size=other.vocab_size)).save_pretrained(tmp_path / "other", other)
    result = run("chat", "--model", str(chat_models[0]), "--mmi-model", str(tmp_path / "other"), input="hi\n")
    assert_clean_error(result, "MMI model's tokenizer", "differs")


def test_bad_dialogue_files_are_clean_errors(tmp_path):
    cases = {"blank.txt": ("\n\n\n", "holds no dialogues"),
             "single.txt": ("Alone.\n", "at least two turns"),
             "wrong.jsonl": ("Hello there\nHi\n", "not valid JSON")}
    for name, (text, fragment) in cases.items():
        result = run(*tiny_train_args(_write(tmp_path / name, text), tmp_path / "out"))
        assert_clean_error(result, fragment)


def test_chinese_dialogues_meet_the_common_word_filter_by_chinese_characters(tmp_path):
    data = _write(tmp_path / "zh.txt", "你好\n你好！\n\n再见\n明天见\n")  # 你 is common; 明天见 has no common character
    args = [a for a in tiny_train_args(data, tmp_path / "out") if a != "--no-common-word-filter"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "  removed 1 sessions, 2 turns: no common word of its language" in result.output.splitlines()
    other = [a for a in tiny_train_args(_write(tmp_path / "zh2.txt", "再见\n明天见\n"), tmp_path / "out2")
             if a != "--no-common-word-filter"]
    assert_clean_error(run(*other), "no training examples left")


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_an_interrupted_dialogue_run_resumes_with_the_same_losses(dialogue_file, tmp_path):
    args = ("--max-steps", "8", "--save-every", "4", "--eval-every", "0")
    full, part = tmp_path / "full", tmp_path / "part"
    assert run(*tiny_train_args(dialogue_file, full), *args).exit_code == 0
    assert run(*tiny_train_args(dialogue_file, part), *args).exit_code == 0
    (part / "latest").write_text("step-0000004\n")  # as if killed after the step-4 checkpoint
    records = [json.loads(line) for line in (part / "metrics.jsonl").read_text().splitlines()]
    (part / "metrics.jsonl").write_text("".join(json.dumps({**r, "before": True}) + "\n" for r in records))
    assert run(*tiny_train_args(dialogue_file, part), *args, "--resume").exit_code == 0

    def records_of(run_dir):
        return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]

    resumed = records_of(part)
    assert [r.get("before", False) for r in resumed] == [True] * 4 + [False] * 4  # steps 5-8 were redone
    assert max(abs(a["loss"] - b["loss"]) for a, b in zip(records_of(full), resumed)) < 1e-5


def test_resume_rebuilds_the_run_from_its_saved_config(dialogue_file, tmp_path):
    out = tmp_path / "run"
    first = run(*tiny_train_args(dialogue_file, out, "--max-steps", "2", "--lr", "5e-3", "--max-history", "1",
                                 "--max-words", "50", "--reverse"))
    assert first.exit_code == 0, first.output
    resumed = run("dialogue", "train", "--out", str(out), "--resume", "--max-steps", "4", "--quiet")  # no data, no filters
    assert resumed.exit_code == 0, resumed.output
    assert "trained the backward (MMI) model 4 steps" in resumed.output

    saved = json.loads((out / "train_config.json").read_text())
    assert {k: saved[k] for k in ("data", "preset", "lr", "max_history", "max_words", "reverse", "common_word_filter",
                                  "val_fraction", "max_steps")} == {
        "data": str(dialogue_file), "preset": "tiny", "lr": 5e-3, "max_history": 1, "max_words": 50, "reverse": True,
        "common_word_filter": False, "val_fraction": 0, "max_steps": 4}
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
