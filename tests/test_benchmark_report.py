"""benchmarks/report.py: a benchmark's --out gains one JSON line per result, and never replaces
or appends to something that is not its results (a script, a directory)."""

import importlib.util
import json
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location("report", Path(__file__).resolve().parents[1] / "benchmarks" / "report.py")
report = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(report)


def test_results_are_appended_and_earlier_ones_kept(tmp_path):
    out = tmp_path / "r.jsonl"
    report.emit({"run": 1}, str(out))
    report.emit({"run": 2}, str(out))
    assert [json.loads(line) for line in out.read_text().splitlines()] == [{"run": 1}, {"run": 2}]


def test_a_file_that_is_not_json_lines_is_refused_and_left_as_it_was(tmp_path):
    script = tmp_path / "bench.py"
    script.write_text("print('a benchmark')\n")
    with pytest.raises(SystemExit, match="is not a results file"):
        report.emit({"run": 1}, str(script))
    assert script.read_text() == "print('a benchmark')\n"
    with pytest.raises(SystemExit, match="is a directory"):
        report.results_so_far(str(tmp_path))
