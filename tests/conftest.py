"""Shared fixtures: tiny models and a small prepared corpus, built once per session."""

from __future__ import annotations

import os
from collections import Counter

import pytest
import torch

from gptkit import GPT, GPTConfig
from gptkit.data import Document, prepare, shakespeare
from gptkit.tokenizer import Tokenizer

# One thread, here and in every subprocess a test starts: the test models are tiny, and two threads
# per process on a shared two-core machine spin against each other (a training test took 59 s with
# two threads and 6 s with one, with the machine at load 4.5).
torch.set_num_threads(1)
os.environ["OMP_NUM_THREADS"] = "1"

# The files that take longest, the longest first (seconds each on a two-core machine at load 4 to 8, from
# `--durations=0`; re-measure when a file gains slow tests). `make test` runs files on two workers, each
# taking the next file as it runs short; xdist on its own orders files by their number of tests, which put
# the few-test files of real processes (a minute each) last, one worker running them while the other
# had nothing left to do. Longest first, the last files are the short ones and the workers end together.
SLOWEST_FIRST = [
    "tests/test_docs_examples.py",  # 137 (its documents two at a time: two cores' worth)
    "tests/train/test_distributed.py",  # 56
    "tests/serve/test_page.py",  # 38
    "tests/train/test_trainer.py",  # 34
    "tests/cli/test_bad_inputs.py",  # 30
    "tests/finetune/test_distributed.py",  # 19
    "tests/cli/test_run_dir.py",  # 18
    "tests/tokenizer/test_gpt2.py",  # 18
    "tests/train/test_kill_resume.py",  # 17
    "tests/finetune/test_cli.py",  # 16
    "tests/serve/test_security.py",  # 14
    "tests/corpus/test_dedup.py",  # 14
]


def pytest_configure(config):
    # Keep the order below under xdist (its --loadscope-reorder, on by default, sorts files by test count).
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    """SLOWEST_FIRST first, then the other files, those with more tests first (xdist's own order);
    within a file, the tests keep their order."""
    files = Counter(item.nodeid.split("::")[0] for item in items)

    def rank(item) -> tuple[int, int]:
        path = item.nodeid.split("::")[0]
        return (SLOWEST_FIRST.index(path) if path in SLOWEST_FIRST else len(SLOWEST_FIRST), -files[path])

    items.sort(key=rank)


VARIANTS = {
    "gpt2-pre": {},
    "gpt1-post": {"ln_order": "post"},
    "gpt3-banded": {"attention": "alternating", "local_window": 4},
    "sinusoidal": {"position": "sinusoidal"},
}


def tiny_model(seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig.preset("tiny", **overrides)).eval()


@pytest.fixture(params=list(VARIANTS), ids=list(VARIANTS))
def variant_model(request) -> GPT:
    return tiny_model(**VARIANTS[request.param])


@pytest.fixture(scope="session")
def small_corpus() -> dict[str, list[Document]]:
    """Three short works for training, one for validation (real Shakespeare, ~200 KB)."""
    works = {w["name"]: w["text"] for w in shakespeare()}
    train = [Document(works[n], n) for n in ("sonnets", "lovers_complaint", "phoenix_and_the_turtle")]
    return {"train": train, "val": [Document(works["passionate_pilgrim"], "passionate_pilgrim")]}


@pytest.fixture(scope="session")
def char_data(tmp_path_factory, small_corpus) -> str:
    """A prepared character-level data directory of the small corpus."""
    out = tmp_path_factory.mktemp("char_data")
    docs = [(split, d) for split, ds in small_corpus.items() for d in ds]
    tok = Tokenizer.char("".join(d.text for _, d in docs))
    prepare(docs, tok, out, progress=False)
    return str(out)


@pytest.fixture(scope="session")
def trained_tiny(char_data, tmp_path_factory) -> str:
    """A run directory: the tiny preset trained for 30 steps on the small corpus (64-token context)."""
    from gptkit.train import TrainConfig, pretrain

    out = tmp_path_factory.mktemp("trained_tiny")
    pretrain(TrainConfig(preset="tiny", data=char_data, out=str(out), max_steps=30, batch_size=8, block_size=64,
                         eval_every=0, save_every=0, sample_tokens=0), progress=False)
    return str(out)
