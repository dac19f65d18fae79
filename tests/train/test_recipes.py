"""`--recipe`: each paper's training hyperparameters, read back from the resolved config and checked
against the paper's own numbers (GPT-1 section 4.1, GPT-2 section 2.3, GPT-3 Table 2.1 and
Appendix B, DialoGPT section 4.1); lengths in tokens become steps of the batch actually used."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gptkit.cli.main import cli
from gptkit.errors import GptkitError
from gptkit.recipes import RECIPES, recipe_keys
from gptkit.train import TrainConfig, pretrain
from gptkit.train.optim import lr_at
from gptkit.train.plot import read_metrics
from gptkit.train_config import DialogueTrainConfig

# Every knob of how a model is trained: a recipe sets them all, so no default of gptkit's (chosen for
# a fast demo on a CPU) changes what a recipe means.
TRAINING_KNOBS = {"preset", "block_size", "batch_size", "grad_accum", "lr", "min_lr", "warmup_steps", "decay_steps",
                  "schedule", "max_steps", "weight_decay", "beta1", "beta2", "grad_clip", "dropout", "batch_ramp",
                  "block_ramp", "optimizer"}

# GPT-3, Table 2.1: (recipe, preset, learning rate, batch in tokens).
GPT3_TABLE = [("gpt3-125M", "gpt3-small", 6.0e-4, 0.5e6), ("gpt3-350M", "gpt3-medium", 3.0e-4, 0.5e6),
              ("gpt3-760M", "gpt3-large", 2.5e-4, 0.5e6), ("gpt3-1.3B", "gpt3-xl", 2.0e-4, 1e6),
              ("gpt3-2.7B", "gpt3-2.7b", 1.6e-4, 1e6), ("gpt3-6.7B", "gpt3-6.7b", 1.2e-4, 2e6),
              ("gpt3-13B", "gpt3-13b", 1.0e-4, 2e6), ("gpt3-175B", "gpt3-175b", 0.6e-4, 3.2e6)]


def resolved(cls=TrainConfig, **flags):
    return cls.resolve({"out": "runs/recipe-test", **flags})


def fake_prepared(path, train_tokens: int) -> str:
    """A data directory as far as a recipe reads it: its meta.json."""
    path.mkdir()
    (path / "meta.json").write_text(json.dumps({"vocab_size": 40478, "splits": {"train": {"tokens": train_tokens,
                                                                                            "shards": []}}}))
    return str(path)


def test_gpt1_section_4_1(tmp_path):
    data = fake_prepared(tmp_path / "books", train_tokens=50 * 64 * 512)
    cfg = resolved(recipe="gpt1", data=data)
    assert (cfg.preset, cfg.block_size, cfg.batch_size, cfg.grad_accum) == ("gpt1", 512, 64, 1)
    assert (cfg.lr, cfg.min_lr, cfg.warmup_steps, cfg.schedule, cfg.decay_steps) == (2.5e-4, 0.0, 2000, "cosine", None)
    assert (cfg.weight_decay, cfg.dropout, cfg.beta1, cfg.beta2) == (0.01, 0.1, 0.9, 0.999)
    assert cfg.max_steps == 100 * 50  # 100 epochs of a corpus of 50 batches
    with pytest.raises(GptkitError, match="--recipe gpt1 runs 100 epochs of --data: give --data, or --max-steps"):
        resolved(recipe="gpt1")
    assert resolved(recipe="gpt1", max_steps=7).max_steps == 7


def test_gpt2_section_2_3():
    cfg = resolved(recipe="gpt2", max_steps=1000)
    assert (cfg.preset, cfg.block_size, cfg.batch_size) == ("gpt2", 1024, 512)
    assert (cfg.lr, cfg.min_lr, cfg.warmup_steps, cfg.weight_decay, cfg.dropout) == (2.5e-4, 0.0, 2000, 0.01, 0.1)
    with pytest.raises(GptkitError, match=r"--recipe gpt2 has no fixed length \(the paper gives none\): give --max-steps"):
        resolved(recipe="gpt2")


@pytest.mark.parametrize("name, preset, lr, batch_tokens", GPT3_TABLE, ids=[row[0] for row in GPT3_TABLE])
def test_gpt3_table_2_1_and_appendix_b(name, preset, lr, batch_tokens):
    cfg = resolved(recipe=name)
    tokens = cfg.batch_size * cfg.grad_accum * cfg.block_size
    assert (cfg.preset, cfg.lr, cfg.block_size) == (preset, lr, 2048)
    assert tokens == pytest.approx(batch_tokens, rel=2e-3)
    assert (cfg.beta1, cfg.beta2, cfg.grad_clip, cfg.weight_decay) == (0.9, 0.95, 1.0, 0.1)
    assert cfg.min_lr == pytest.approx(0.1 * lr)  # cosine decay to 10%
    assert cfg.warmup_steps == round(375e6 / tokens)  # the first 375M tokens
    assert cfg.decay_steps == round(260e9 / tokens)  # over 260B tokens
    assert cfg.max_steps == round(300e9 / tokens)  # of 300B


def test_dialogpt_is_how_dialogue_train_trains():
    cfg = resolved(DialogueTrainConfig, recipe="dialogpt", max_steps=100)
    assert (cfg.preset, cfg.schedule, cfg.warmup_steps, cfg.block_size, cfg.batch_size) == (
        "dialogpt-medium", "noam", 16_000, 128, 512)
    assert cfg.lr == pytest.approx(2.47e-5, rel=1e-3) and cfg.weight_decay == 0.01
    with pytest.raises(GptkitError, match="until the validation loss stops improving"):
        resolved(DialogueTrainConfig, recipe="dialogpt")
    with pytest.raises(GptkitError, match="--recipe dialogpt is how `gptkit dialogue train` trains, not `gptkit pretrain`"):
        resolved(recipe="dialogpt", max_steps=10)


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_training_knob_comes_from_the_recipe(name):
    keys = recipe_keys(name, RECIPES[name].command, {"max_steps": 10}, train_tokens=lambda: 10**6)
    assert set(keys) | {"max_steps"} == TRAINING_KNOBS


def test_flags_override_and_steps_follow_the_batch_used():
    cfg = resolved(recipe="gpt3-125M", lr=1e-3, batch_size=8, grad_accum=4, block_size=256)
    assert (cfg.lr, cfg.min_lr, cfg.batch_size, cfg.grad_accum, cfg.block_size) == (1e-3, 1e-4, 8, 4, 256)
    assert cfg.warmup_steps == round(375e6 / (8 * 4 * 256)) and cfg.max_steps == round(300e9 / (8 * 4 * 256))
    # Accumulating micro-batches keeps the paper's batch in tokens.
    assert resolved(recipe="gpt3-125M", grad_accum=4).batch_size == round(0.5e6 / (4 * 2048))
    assert resolved(recipe="gpt3-125M", min_lr=0.0, warmup_steps=3).min_lr == 0.0


def test_a_config_file_overrides_the_recipe_and_flags_the_file(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("recipe: gpt3-350M\nlr: 1.0e-4\nbatch_size: 16\n")
    cfg = TrainConfig.resolve({"out": "runs/x", "batch_size": 32}, config)
    assert (cfg.preset, cfg.lr, cfg.batch_size, cfg.beta2) == ("gpt3-medium", 1e-4, 32, 0.95)


def test_a_resumed_run_keeps_its_settings(tmp_path):
    saved = TrainConfig.resolve({"out": str(tmp_path), "recipe": "gpt3-125M", "lr": 2e-4})
    (tmp_path / "train_config.json").write_text(saved.to_json())
    cfg = TrainConfig.resolve({"out": str(tmp_path), "resume": True})
    assert cfg == TrainConfig(**{**json.loads(saved.to_json()), "resume": True})


def test_an_unknown_recipe_lists_the_known_ones():
    with pytest.raises(GptkitError, match="unknown recipe 'gpt4'; known recipes: gpt1, gpt2, gpt3-125M, .*, dialogpt"):
        resolved(recipe="gpt4")
    assert resolved(recipe="GPT3-125m").lr == 6e-4  # the size's case does not matter
    with pytest.raises(GptkitError, match="unknown recipe 5"):
        resolved(recipe=5)  # from a config file


def test_noam_schedule():
    assert lr_at(99, 1.0, 0.0, 100, 10**6, "noam") == pytest.approx(1.0)  # the warmup's end
    assert lr_at(399, 1.0, 0.0, 100, 10**6, "noam") == pytest.approx(0.5)  # 1 / sqrt(step)
    assert lr_at(10**6, 1.0, 0.05, 100, 10, "noam") == 0.05  # never below min_lr


def test_info_prints_the_papers_numbers():
    result = CliRunner().invoke(cli, ["info", "--recipe", "gpt3-125M"])
    assert result.exit_code == 0, result.output
    for text in ("Table 2.1", "244 sequences x 2,048 = 499,712 tokens", "learning rate: 0.0006", "beta2 0.95",
                 "eps 1e-08", "weight decay 0.1", "clipping 1.0", "375M tokens (750 steps)",
                 "10% of the peak) over 260B tokens (520,300 steps)", "300B tokens (600,346 steps)"):
        assert text in result.output
    data = json.loads(CliRunner().invoke(cli, ["info", "--recipe", "gpt1", "--json"]).output)
    assert (data["lr"], data["warmup_steps"], data["batch_size"], data["epochs"]) == (2.5e-4, 2000, 64, 100)
    bad = CliRunner().invoke(cli, ["info", "--recipe", "gpt5"])
    assert bad.exit_code == 2 and bad.output.startswith("error: unknown recipe 'gpt5'; known recipes: gpt1")


def test_a_recipe_run_trains_with_its_optimizer_and_schedule(char_data, tmp_path):
    cfg = TrainConfig.resolve({"recipe": "gpt3-125M", "preset": "tiny", "data": char_data, "out": str(tmp_path),
                               "block_size": 32, "batch_size": 2, "max_steps": 4, "warmup_steps": 1, "decay_steps": 2,
                               "eval_every": 0, "save_every": 0, "sample_tokens": 0, "log_every": 1})
    result = pretrain(cfg, progress=False)
    group = result.trainer.optimizer.param_groups[0]
    assert (group["betas"], group["eps"], group["weight_decay"]) == ((0.9, 0.95), RECIPES["gpt3-125M"].eps, 0.1)
    lrs = [r["lr"] for r in read_metrics(tmp_path / "metrics.jsonl")]
    assert lrs == pytest.approx([6e-4, 6e-4, 6e-5, 6e-5])  # cosine to 10% at decay_steps, then held
