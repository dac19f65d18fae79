import importlib
import json
import math

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from gptkit import GptkitError
from gptkit.checkpoint import load, load_model, resolve_model_dir
from gptkit.data import WindowLoader
from gptkit.tokenizer import Tokenizer
from gptkit.train import TrainConfig, Trainer, pretrain
from gptkit.train.optim import (
    lr_at,
    make_optimizer,
    optimizer_from_tensors,
    optimizer_to_tensors,
    ramp_at,
)
from tests.conftest import tiny_model


def tiny_run(char_data, out, **overrides) -> TrainConfig:
    keys = dict(preset="tiny", data=char_data, out=str(out), max_steps=30, batch_size=8, block_size=32,
                lr=3e-3, warmup_steps=5, eval_every=10, eval_batches=2, save_every=10, sample_tokens=0)
    return TrainConfig(**{**keys, **overrides})


def test_pretraining_lowers_the_loss_and_writes_a_run(char_data, tmp_path):
    result = pretrain(tiny_run(char_data, tmp_path, max_steps=60), progress=False)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 61))
    assert records[-1]["loss"] < records[0]["loss"] - 1.0
    assert result.val_loss < records[0]["loss"]
    assert {"lr", "grad_norm", "tokens_per_sec"} <= set(records[0])
    times = [r["time_s"] for r in records]  # wall-clock seconds, for loss against time
    assert 0 < times[0] < times[-1] and all(a <= b for a, b in zip(times, times[1:]))
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpt = resolve_model_dir(tmp_path)
    assert ckpt.name == "step-0000060"
    assert sorted(p.name for p in ckpt.iterdir()) == [
        "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "training_state.safetensors",
        "vocab.json"]


def test_only_the_newest_checkpoints_are_kept(char_data, tmp_path):
    pretrain(tiny_run(char_data, tmp_path, keep_checkpoints=2), progress=False)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-0000020", "step-0000030"]
    assert (tmp_path / "latest").read_text().strip() == "step-0000030"


def test_trained_checkpoint_loads_with_its_tokenizer(char_data, tmp_path):
    pretrain(tiny_run(char_data, tmp_path), progress=False)
    model, tok = load(tmp_path)
    assert model.config.vocab_size == tok.vocab_size
    assert not model.training


@pytest.mark.parametrize("ramp", [{}, {"batch_ramp": 25, "batch_ramp_start": 2, "block_ramp": 25, "block_ramp_start": 8}],
                         ids=["whole-batch", "ramped-batch-and-windows"])
def test_resume_continues_the_same_run(char_data, tmp_path, ramp):
    full = tmp_path / "full"
    pretrain(tiny_run(char_data, full, dropout=0.1, **ramp), progress=False)
    part = tmp_path / "part"
    pretrain(tiny_run(char_data, part, dropout=0.1, max_steps=30, save_every=20, **ramp), progress=False)
    # pretend the run died after its step-20 checkpoint (marking what it logged), then resume it
    (part / "latest").write_text("step-0000020\n")
    logged = [json.loads(line) for line in (part / "metrics.jsonl").read_text().splitlines()]
    (part / "metrics.jsonl").write_text("".join(json.dumps({**r, "before": True, "time_s": 1000.0 + r["step"]}) + "\n"
                                                for r in logged))
    pretrain(tiny_run(char_data, part, dropout=0.1, resume=True, **ramp), progress=False)
    a = [json.loads(line) for line in (full / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(line) for line in (part / "metrics.jsonl").read_text().splitlines()]
    assert len(a) == len(b) == 30
    assert [r.get("before", False) for r in b] == [True] * 20 + [False] * 10  # resumed, not restarted
    assert max(abs(x["loss"] - y["loss"]) for x, y in zip(a, b)) < 1e-5
    assert all(r["time_s"] > 1020.0 for r in b[20:])  # the run's clock goes on from its last logged step


def test_a_run_saved_before_a_knob_existed_resumes_as_it_trained(char_data, tmp_path):
    # Runs saved before --optimizer (and the ramps) trained with AdamW on whole batches: resumed, they
    # must go on so, not switch to today's defaults (Muon's extra group would not even load).
    full, part = tmp_path / "full", tmp_path / "part"
    pretrain(tiny_run(char_data, full, optimizer="adamw"), progress=False)
    pretrain(tiny_run(char_data, part, optimizer="adamw", save_every=20), progress=False)
    saved = json.loads((part / "train_config.json").read_text())
    for key in ("optimizer", "batch_ramp", "block_ramp"):
        del saved[key]
    (part / "train_config.json").write_text(json.dumps(saved))
    (part / "latest").write_text("step-0000020\n")
    cfg = TrainConfig.resolve({"out": str(part), "resume": True})
    assert (cfg.optimizer, cfg.batch_ramp, cfg.block_ramp) == ("adamw", 0, 0)
    result = pretrain(cfg, progress=False)
    assert type(result.trainer.optimizer) is torch.optim.AdamW
    a, b = ([json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (full, part))
    assert len(a) == len(b) == 30 and max(abs(x - y) for x, y in zip(a, b)) < 1e-5  # steps 21-30 redone alike


def test_a_muon_run_saved_before_muon_momentum_resumes_with_the_momentum_it_had(char_data, tmp_path):
    # Stop 32's Muon runs had momentum 0.95 in neither their config nor their optimizer's groups.
    full, part = tmp_path / "full", tmp_path / "part"
    pretrain(tiny_run(char_data, full, muon_momentum=0.95), progress=False)
    pretrain(tiny_run(char_data, part, muon_momentum=0.95, save_every=20), progress=False)  # made to look old below
    saved = json.loads((part / "train_config.json").read_text())
    del saved["muon_momentum"]
    (part / "train_config.json").write_text(json.dumps(saved))
    state = part / "checkpoints" / "step-0000020" / "training_state.safetensors"
    meta = json.loads(safe_open(state, "pt").metadata()["gptkit_state"])
    meta["train_config"] = saved
    for group in meta["optimizer"]["param_groups"]:
        group.pop("momentum", None)
    save_file(load_file(state), state, metadata={"gptkit_state": json.dumps(meta)})
    (part / "latest").write_text("step-0000020\n")
    cfg = TrainConfig.resolve({"out": str(part), "resume": True})
    assert cfg.muon_momentum == 0.95
    pretrain(cfg, progress=False)
    a, b = ([json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (full, part))
    assert len(a) == len(b) == 30 and max(abs(x - y) for x, y in zip(a, b)) < 1e-5  # steps 21-30 redone with 0.95


def test_optimizer_flags_given_to_a_resume_take_effect(char_data, tmp_path):
    # the checkpoint's optimizer groups hold the settings they were saved with; the resume's flags win
    pretrain(tiny_run(char_data, tmp_path, max_steps=20), progress=False)
    cfg = TrainConfig.resolve({"out": str(tmp_path), "resume": True, "max_steps": 25, "muon_lr": 1.5e-2,
                               "muon_momentum": 0.8, "weight_decay": 0.2, "beta2": 0.99})
    trainer = pretrain(cfg, progress=False).trainer
    embeddings, gains, muon = trainer.optimizer.param_groups
    assert muon["muon"] and muon["lr_scale"] == pytest.approx(5.0) and muon["momentum"] == 0.8
    assert muon["weight_decay"] == embeddings["weight_decay"] == 0.2 and gains["weight_decay"] == 0.0
    assert all(group["betas"] == (0.9, 0.99) for group in trainer.optimizer.param_groups)


def test_resuming_with_another_optimizer_is_refused_and_changes_nothing(char_data, tmp_path):
    pretrain(tiny_run(char_data, tmp_path, max_steps=20), progress=False)  # Muon, the default
    saved = (tmp_path / "train_config.json").read_text()
    with pytest.raises(GptkitError, match="trained with --optimizer muon.*resume without --optimizer"):
        pretrain(TrainConfig.resolve({"out": str(tmp_path), "resume": True, "optimizer": "adamw"}), progress=False)
    assert (tmp_path / "train_config.json").read_text() == saved  # the refused resume wrote nothing


def test_resume_without_a_checkpoint_is_a_clear_error(char_data, tmp_path):
    with pytest.raises(GptkitError, match="no checkpoint yet.*start it again without --resume"):
        pretrain(tiny_run(char_data, tmp_path, resume=True), progress=False)


def test_gradient_accumulation_matches_a_big_batch(char_data, tmp_path):
    def first_step_weights(**kw):
        torch.manual_seed(0)
        cfg = tiny_run(char_data, tmp_path / str(kw), max_steps=1, eval_every=0, save_every=0, **kw)
        return pretrain(cfg, progress=False).trainer.model.wte.weight.detach().clone()

    # 2 micro-batches of 4 see the same 8 windows as one batch of 8 (the loader draws them in order).
    torch.testing.assert_close(first_step_weights(batch_size=8, grad_accum=1),
                               first_step_weights(batch_size=4, grad_accum=2), atol=1e-6, rtol=1e-5)


def test_the_batch_ramps_up_in_multiples_of_its_start():
    assert [ramp_at(s, 32, 8, 90) for s in (0, 29, 30, 59, 60, 89, 90, 10**6)] == [8, 8, 16, 16, 24, 24, 32, 32]
    assert [ramp_at(s, 32, 8, 0) for s in (0, 5)] == [32, 32]  # no ramp
    assert ramp_at(0, 12, 5, 10) == 5 and ramp_at(9, 12, 5, 10) == 10  # never past the batch


def test_a_ramped_run_trains_on_the_first_rows_and_positions_of_each_batch(char_data, tmp_path):
    cfg = tiny_run(char_data, tmp_path, batch_size=8, block_size=16, batch_ramp=4, batch_ramp_start=2, block_ramp=3,
                   block_ramp_start=4)
    loader = WindowLoader(char_data, "train", 16, 8, seed=cfg.seed)
    trainer = Trainer(cfg, tiny_model(vocab_size=Tokenizer.load(char_data).vocab_size), Tokenizer.load(char_data), loader)
    assert [trainer.train_step()["tokens"] for _ in range(6)] == [2 * 4, 2 * 8, 4 * 12, 6 * 16, 8 * 16, 8 * 16]
    # what each step costs, as a share of a whole one: the progress bar's time left weighs steps by it
    assert [trainer.step_cost(s) for s in range(5)] == [2 * 4 / 128, 2 * 8 / 128, 4 * 12 / 128, 6 * 16 / 128, 1.0]


def test_a_ramp_that_starts_at_or_above_its_end_is_no_ramp(char_data, tmp_path):
    cfg = tiny_run(char_data, tmp_path, batch_size=4, block_size=16, batch_ramp=10, batch_ramp_start=8, block_ramp=10,
                   block_ramp_start=64)
    loader = WindowLoader(char_data, "train", 16, 4, seed=cfg.seed)
    trainer = Trainer(cfg, tiny_model(vocab_size=Tokenizer.load(char_data).vocab_size), Tokenizer.load(char_data), loader)
    assert [trainer.train_step()["tokens"] for _ in range(2)] == [4 * 16, 4 * 16]


def test_windows_ramp_only_in_pretraining():
    from gptkit.train_config import DialogueTrainConfig

    with pytest.raises(GptkitError, match="--block-ramp shortens pretraining's windows; `gptkit dialogue train`"):
        DialogueTrainConfig(block_ramp=100).validate()


def test_lr_schedule_warms_up_then_decays_to_min():
    assert lr_at(0, 1.0, 0.1, 10, 100) == pytest.approx(0.1)
    assert lr_at(9, 1.0, 0.1, 10, 100) == pytest.approx(1.0)
    assert lr_at(55, 1.0, 0.1, 10, 100) == pytest.approx(0.55)
    assert lr_at(100, 1.0, 0.1, 10, 100) == pytest.approx(0.1)
    steps = [lr_at(s, 1.0, 0.1, 10, 100) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(steps, steps[1:]))


def test_weight_decay_applies_to_matrices_only():
    opt = make_optimizer(tiny_model(), 1e-3, 0.1, (0.9, 0.95), "cpu")
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and all(p.dim() == 2 for p in decayed["params"])
    assert plain["weight_decay"] == 0.0 and all(p.dim() == 1 for p in plain["params"])


def test_optimizer_state_round_trips_through_plain_tensors():
    model = tiny_model()
    opt = make_optimizer(model, 1e-3, 0.1, (0.9, 0.95), "cpu")
    model(torch.randint(0, 256, (2, 8))).sum().backward()
    opt.step()
    tensors, meta = optimizer_to_tensors(opt)
    json.dumps(meta)  # no pickle: the rest must be JSON
    fresh = make_optimizer(model, 1e-3, 0.1, (0.9, 0.95), "cpu")
    optimizer_from_tensors(fresh, tensors, meta)
    for a, b in zip(opt.state.values(), fresh.state.values()):
        for key in a:
            torch.testing.assert_close(a[key], b[key])


def test_config_file_keys_and_unknown_keys(tmp_path):
    (tmp_path / "run.yaml").write_text("max_steps: 7\nlr: 0.01\n")
    (tmp_path / "run.toml").write_text("max_steps = 9\nmodel = { n_layer = 1 }\n")
    assert TrainConfig.from_file(tmp_path / "run.yaml") == {"max_steps": 7, "lr": 0.01}
    assert TrainConfig.from_file(tmp_path / "run.toml") == {"max_steps": 9, "model": {"n_layer": 1}}
    (tmp_path / "bad.yaml").write_text("max_stepz: 7\n")
    with pytest.raises(GptkitError, match="unknown keys max_stepz"):
        TrainConfig.from_file(tmp_path / "bad.yaml")


@pytest.mark.parametrize(("keys", "message"), [
    (dict(compile_mode="fast"), "--compile-mode must be one of default, reduce-overhead"),
    (dict(compile_mode="reduce-overhead"), "--compile-mode reduce-overhead is a mode of torch.compile: add --compile"),
])
def test_a_compile_mode_is_checked_before_anything_runs(keys, message):
    with pytest.raises(GptkitError, match=message):
        TrainConfig(**keys).validate()


def test_model_overrides_from_the_config(char_data, tmp_path):
    result = pretrain(tiny_run(char_data, tmp_path, max_steps=2, model={"n_layer": 1}), progress=False)
    assert result.trainer.model.config.n_layer == 1


def test_init_from_starts_from_given_weights(char_data, tmp_path):
    pretrain(tiny_run(char_data, tmp_path / "a", max_steps=5), progress=False)
    start = load_model(tmp_path / "a")
    result = pretrain(tiny_run(char_data, tmp_path / "b", max_steps=1, lr=1e-9, init_from=str(tmp_path / "a")),
                      progress=False)
    torch.testing.assert_close(result.trainer.model.wte.weight, start.wte.weight, atol=1e-6, rtol=0)


def test_validation_beats_the_unigram_baseline_quickly(char_data, tmp_path):
    result = pretrain(tiny_run(char_data, tmp_path, max_steps=150, eval_every=0, save_every=0), progress=False)
    assert result.val_loss < result.unigram_baseline
    assert math.isfinite(result.unigram_baseline)


def test_bf16_autocast_path_runs_on_cpu(char_data, tmp_path):
    # The GPU's mixed-precision path, exercised on the CPU: same first loss to bf16 precision.
    fp32 = pretrain(tiny_run(char_data, tmp_path / "fp32", max_steps=3, eval_every=0, save_every=0), progress=False)
    bf16 = pretrain(tiny_run(char_data, tmp_path / "bf16", max_steps=3, eval_every=0, save_every=0, dtype="bf16"),
                    progress=False)
    first = [json.loads((r.trainer.metrics_path).read_text().splitlines()[0])["loss"] for r in (fp32, bf16)]
    assert first[0] == pytest.approx(first[1], rel=2e-2)
    assert bf16.trainer.model.wte.weight.dtype == torch.float32  # master weights stay fp32


@pytest.mark.slow
def test_compiled_model_trains_like_the_eager_one(char_data, tmp_path):
    def losses(compile: bool) -> list[float]:
        # The Trainer's own steps, without validation batches: one graph to compile (the training
        # step, not also an evaluation one), and one layer, so fewer kernels for inductor's C++
        # compiler, which takes most of the time.
        cfg = tiny_run(char_data, tmp_path / str(compile), compile=compile)
        tok = Tokenizer.load(char_data)
        model = tiny_model(vocab_size=tok.vocab_size, n_layer=1).train()
        loader = WindowLoader(char_data, "train", cfg.block_size, cfg.batch_size, seed=cfg.seed)
        trainer = Trainer(cfg, model, tok, loader, progress=False)
        return [trainer.train_step()["loss"].item() for _ in range(3)]

    assert losses(False) == pytest.approx(losses(True), abs=1e-4)


def test_metrics_reader_skips_a_line_cut_short_by_a_kill(tmp_path):
    from gptkit.train.plot import read_metrics

    (tmp_path / "m.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')
    assert read_metrics(tmp_path / "m.jsonl") == [{"step": 1, "loss": 2.0}]


def test_bundled_corpus_shards_are_cached_per_tokenizer(tmp_path, monkeypatch, small_corpus):
    # Four short works stand in for the bundled 5 MB, which GPT-2's tokenizer alone takes seconds to encode.
    prepare_module = importlib.import_module("gptkit.data.prepare")  # not the function of that name
    monkeypatch.setattr(prepare_module, "shakespeare_splits", lambda: small_corpus)
    tiny = dict(preset="tiny", out=str(tmp_path), max_steps=1, batch_size=2, block_size=16, eval_every=0,
                save_every=0, sample_tokens=0)
    char = pretrain(TrainConfig(**tiny), progress=False)
    gpt2 = pretrain(TrainConfig(**tiny, tokenizer="gpt2", overwrite=True), progress=False)
    assert char.trainer.tokenizer.vocab_size < 100 and gpt2.trainer.tokenizer.vocab_size == 50257
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["char", "gpt2"]  # --overwrite keeps the cache


def test_the_progress_bar_shows_each_validations_headline_metric():
    from gptkit.train.trainer import _headline

    assert _headline({"val_loss": 1.23456}) == {"val": "1.235"}
    assert _headline({"accuracy": 0.5, "macro_f1": 0.4}) == {"accuracy": "0.500"}  # fine-tuning's, not val=-
    assert _headline({}) == {}
