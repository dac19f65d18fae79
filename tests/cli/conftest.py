"""The model the command-line tests run commands on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gptkit.checkpoint import resolve_model_dir


@pytest.fixture(scope="module")
def model(trained_tiny, tmp_path_factory) -> Path:
    """A small trained model directory (character vocabulary), copied so cases may break copies of it."""
    out = tmp_path_factory.mktemp("model") / "model"
    shutil.copytree(resolve_model_dir(trained_tiny), out)
    (out / "training_state.safetensors").unlink()
    return out
