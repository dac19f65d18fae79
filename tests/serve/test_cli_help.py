"""`gptkit serve --help` and `gptkit eval --help` say what --dtype and --quantize auto do there: fp32, as loaded."""

from __future__ import annotations

import torch
from click.testing import CliRunner

from gptkit.cli.main import cli
from gptkit.inference.precision import pick_precision


def test_the_help_says_auto_is_fp32_as_the_server_loads_it():
    help_text = " ".join(CliRunner().invoke(cli, ["serve", "--help"]).output.split())
    assert "auto: fp32 on every device" in help_text and "auto: none, also on the CPU" in help_text
    assert "int8 on the CPU" not in help_text  # gptkit generate's auto
    for device in ("cpu", "cuda"):  # what serve asks for (exact): no device is needed to pick
        assert pick_precision(torch.device(device), "auto", "auto", exact=True) == (torch.float32, None)
