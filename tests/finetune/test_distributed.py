"""Fine-tuning under torchrun: GPT-1's task model sharded by FSDP2 on 2 CPU processes (gloo) learns
exactly what one process learns from the same global batch."""

import json
import subprocess

import pytest
import torch

from gptkit.finetune import FinetuneConfig, finetune
from gptkit.tensor_io import load_tensors
from tests.torchrun import finish, torchrun

# No dropout, so the ranks' steps are the one process's step split in two.
RUN = dict(task="classify", batch_size=8, max_steps=4, eval_every=2, clf_dropout=0.0, lr=1e-3)


@pytest.mark.slow
def test_fsdp_fine_tuning_on_two_processes_equals_one_process(task_files, base_model, tmp_path):
    train, valid = task_files["classify"]
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in RUN.items()]
    job = torchrun(2, ["finetune", "--model", str(base_model), "--train", str(train), "--valid", str(valid),
                       "--out", str(tmp_path / "fsdp"), "--parallel=fsdp", "--quiet", *flags], stdout=subprocess.PIPE)
    finetune(FinetuneConfig(**RUN, init_from=str(base_model), train=str(train), valid=str(valid),
                            out=str(tmp_path / "one")), progress=False)  # the one-process reference, meanwhile
    out, _ = job.communicate()
    finish(job)
    assert sum(line.startswith("best accuracy") for line in out.splitlines()) == 1  # rank 0 alone reports

    reports = [json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("fsdp", "one")]
    assert [r["step"] for r in reports[0]["history"]] == [2, 4]
    assert [r["accuracy"] for r in reports[0]["history"]] == [r["accuracy"] for r in reports[1]["history"]]
    for weights in ("model.safetensors", "head.safetensors"):  # the best model, gathered from the shards by rank 0
        a, b = (load_tensors(tmp_path / run / weights) for run in ("fsdp", "one"))
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=0, msg=key)
