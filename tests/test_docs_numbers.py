"""Every measured figure in the docs' results tables, and each measured time or loss quoted beside a
command, is in the file of benchmarks/results/ it comes from (issue 23): docs/benchmarks.md promises
that no number is typed in by hand, and a figure without its file cannot be checked or rerun.

A figure is found when some number of the file, rounded to the figure's decimals, equals it; as
printed, as a percentage (x 100) or in seconds from milliseconds (/ 1000). Columns computed from the
others (ratios) or not measured (chance levels) are named per table and skipped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
FIGURE = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
SCALES = (1, 100, 0.001)  # as printed, a percentage, milliseconds shown as seconds


@dataclass
class Table:
    doc: str
    header: str  # the start of the table's first line
    files: tuple[str, ...]
    skip: set[str] = field(default_factory=set)  # columns not measured: derived, or the setting of a row


TABLES = [
    Table("docs/benchmarks.md", "| machine | preset | precision", ("train_h200.jsonl", "train_cpu.jsonl"),
          {"machine", "preset"}),
    Table("docs/benchmarks.md", "| system | batch x 1024 | tokens/s", ("train_batch_h100.jsonl",), {"system"}),
    Table("docs/benchmarks.md", "| default job on an H100 |", ("default_job_wall_h100.jsonl", "default_job_eager_h100.jsonl",
                                                                "default_job_graphs_h100.jsonl"), {"default job on an H100"}),
    Table("docs/benchmarks.md", "| model | batch | system (H100)", ("decode_gpu_h100.json",),
          {"model", "x transformers", "x transformers, static cache"}),
    Table("docs/benchmarks.md", "| round | nanoGPT", ("train_vs_nanogpt_cpu.jsonl",), {"round", "gptkit / nanoGPT"}),
    Table("docs/benchmarks.md", "| machine | rows (batch x context) | plain", ("loss_cpu.jsonl",), {"machine"}),
    Table("docs/benchmarks.md", "| model | batch | system | new tok/s", ("decode_cpu.json",),
          {"model", "x transformers"}),
    Table("docs/benchmarks.md", "| batch | system (CPU) | new tok/s", ("decode_vs_ctranslate2_cpu.json",),
          {"batch", "x CTranslate2, same precision"}),
    Table("docs/benchmarks.md", "| rows x prompt tokens | cache reads", ("decode_step_cpu.jsonl",), {"x the plain way"}),
    Table("docs/benchmarks.md", "| concurrent streams |", ("serve_load_cpu.json",), {"serve / generate"}),
    Table("docs/benchmarks.md", "| chat turn | prompt tokens", ("serve_chat_cpu.json",)),
    Table("docs/benchmarks.md", "| engine | resident memory idle", ("serve_chat_cpu.json",)),
    Table("docs/benchmarks.md", "| streams (int8 run) |", ("serve_load_int8_cpu.json",), {"x the engine before, fp32"}),
    Table("docs/serving.md", "| measured | engine before", ("serve_chat_cpu.json", "serve_load_cpu.json")),
    Table("docs/generation.md", "| precision | perplexity | change", ("precision_perplexity_cpu.json",)),
    Table("docs/evaluation.md", "| task | metric | value | chance", ("eval_default_cpu.json",), {"chance"}),
    Table("docs/data.md", "| run | MB/s | ratio", ("prepare_throughput_cpu.json",)),
    Table("docs/data.md", "| run | tiktoken, 2 threads", ("prepare_throughput_cpu.json",), {"run"}),
    Table("docs/data.md", "| step | system | MB/s | MB/s with start-up", ("corpus_cpu.json",), {"step", "system", "gptkit / it"}),
    Table("docs/data.md", "| step | MB/s, 20 MB | MB/s, 199 MB", ("corpus_cpu.json",), {"step"}),
    Table("docs/checkpoints.md", "| loader | weights in memory", ("load_memory_cpu.jsonl",)),
    Table("docs/model.md", "| T | banded layer | dense under the band mask", ("banded_attention_cpu.json",), {"T"}),
    Table("docs/model.md", "| context | alternating tok/s", ("banded_model_cpu.json",), {"context", "greedy equal"}),
    Table("docs/finetuning.md", "| set (task) | run | test accuracy", ("finetune_shakespeare_h200.json",),
          {"run"}),
    Table("docs/chat.md", "| dump (MB) | --partition-mb | MB/s", ("dialogue_extract_cpu.jsonl",), {"--partition-mb"}),
    Table("docs/pretraining.md", "| run | wall time | held-out loss", ("time_to_quality_cpu.jsonl",), {"run"}),
    Table("docs/pretraining.md", "| run | validation at step 300", ("muon_ablation_cpu.jsonl",), {"run", "kept"}),
    Table("docs/pretraining.md", "| change (Muon, AdamW at 3e-3", ("muon_ablation_cpu.jsonl",),
          {"change (Muon, AdamW at 3e-3, batch ramp over 600 unless said)", "kept"}),
    Table("docs/pretraining.md", "| change (12 windows of 64", ("time_to_quality_ablation_cpu.jsonl",),
          {"change (12 windows of 64 unless said)", "kept"}),
]

# Measured figures quoted in prose: (document, the words that hold the figure, its file, the figure)
PROSE = [
    ("README.md", "the whole command took 218.3 s", "time_to_quality_cpu.jsonl", "218.3"),
    ("README.md", "held-out loss of 1.5915 nats", "time_to_quality_cpu.jsonl", "1.5915"),
    ("README.md", "1.685 in 472.6 s for the defaults before", "time_to_quality_cpu.jsonl", "472.6"),
    ("README.md", "1.9516 with AdamW alone", "time_to_quality_cpu.jsonl", "1.9516"),
    ("docs/benchmarks.md", "took 472.6 s to 1.685", "time_to_quality_cpu.jsonl", "472.6"),
    ("docs/pretraining.md", "stop 30's AdamW recipe 0.997x", "time_to_quality_cpu.jsonl", "0.997"),
    ("docs/pretraining.md", "stop 32's recipe took 0.603x", "time_to_quality_cpu.jsonl", "0.603"),
    ("docs/pretraining.md", "(1.5824 in stop 32's run)", "time_to_quality_cpu.jsonl", "1.5824"),
    ("docs/pretraining.md", "at step 400, 58.9 s into the", "time_to_quality_cpu.jsonl", "58.9"),
    ("docs/pretraining.md", "training, read 1.9053", "time_to_quality_cpu.jsonl", "1.9053"),
    ("docs/pretraining.md", "(nanoGPT took 120.6 s in stop 30's run", "time_to_quality_cpu.jsonl", "120.6"),
    ("docs/pretraining.md", "(2.511 at step 600, against 2.037 on the first 64", "muon_ablation_cpu.jsonl", "2.037"),
    ("README.md", "ignores context scores 3.359", "docs_commands_cpu.json", "3.359"),
    ("README.md", "2 shared CPU cores: 218.3 s measured", "time_to_quality_cpu.jsonl", "218.3"),
    ("README.md", "(0.55 s a step", "docs_commands_cpu.json", "0.55"),
    ("docs/benchmarks.md", "218.3 s on 2 CPU cores beside", "time_to_quality_cpu.jsonl", "218.3"),
    ("docs/benchmarks.md", "baseline of 3.359", "docs_commands_cpu.json", "3.359"),
    ("docs/benchmarks.md", "(5.2902 against 5.3011", "precision_perplexity_cpu.json", "5.3011"),
    ("docs/finetuning.md", "a step took 0.48 s for classify", "docs_commands_cpu.json", "0.48"),
    ("docs/finetuning.md", "4.74 s for choice", "docs_commands_cpu.json", "4.74"),
    ("docs/evaluation.md", "5.30 per character, 2.405 bits per byte", "perplexity_default_cpu.json", "2.405"),
    ("docs/benchmarks.md", "average 1.65 before, 1.84 after,", "decode_vs_ctranslate2_cpu.json", "1.84"),
    ("docs/generation.md", "(64 rows at 200 keys: 294.2 ms a step against 484.8;", "decode_step_cpu.jsonl", "484.8"),
    ("docs/chat.md", "Validation loss 1.769 / 1.772", "dialogue_recipes_cpu.json", "1.772"),
    ("docs/benchmarks.md", "1,680 of the 2,536.4 prompt tokens", "serve_chat_cpu.json", "1,680"),
    ("docs/benchmarks.md", "load average 0.33 before the load test, 1.00 after;", "serve_load_cpu.json", "1.00"),
    ("docs/chat.md", "(forward / backward; 360 and", "dialogue_recipes_cpu.json", "360"),
    ("docs/chat.md", "130 seconds on one CPU thread", "dialogue_recipes_cpu.json", "130"),
    ("docs/chat.md", "validation loss 5.948; model: runs/tang", "dialogue_recipes_cpu.json", "5.948"),
    ("docs/chat.md", "the two trainings took 835 and", "chinese_chat_cpu.json", "835"),
    ("docs/chat.md", "835 and 697 s", "chinese_chat_cpu.json", "697"),
    ("docs/chat.md", "trained at 11,376 tokens a second", "chinese_chat_cpu.json", "11,376"),
    ("docs/chat.md", "Training loss 0.525 / 0.611", "chinese_chat_cpu.json", "0.611"),
    ("docs/chat.md", "Training loss 0.525", "chinese_chat_cpu.json", "0.525"),
    ("docs/chat.md", "loss 6.126 / 4.514", "chinese_chat_cpu.json", "6.126"),
    ("docs/chat.md", "loss 6.126 / 4.514", "chinese_chat_cpu.json", "4.514"),
    ("docs/chat.md", "the two took 738 and 311 s", "chinese_chat_cpu.json", "738"),
    ("docs/chat.md", "the two took 738 and 311 s", "chinese_chat_cpu.json", "311"),
    ("docs/data.md", "its time went to signing (29.8 s)", "corpus_cpu.json", "29.8"),
    ("docs/data.md", "all 9,083 planted near copies", "corpus_cpu.json", "9,083"),
    ("docs/chat.md", "1.025x a pretraining step of the same", "dialogue_step_cpu.jsonl", "1.025"),
    ("docs/chat.md", "as before, took 1.031x there", "dialogue_step_cpu.jsonl", "1.031"),
    ("docs/chat.md", "2-core machine at load 4.7;", "dialogue_step_cpu.jsonl", "4.7"),
    ("docs/chat.md", "Peak memory is 48.3 and 49.9 MB", "dialogue_extract_cpu.jsonl", "49.9"),
    ("docs/chat.md", "held 96.3 and 117.3 MB", "dialogue_extract_cpu.jsonl", "117.3"),
]
# Times beside commands, from a measured rate: (document, the words, minutes, steps, which command's rate)
TIMES = [
    ("README.md", "700 steps each, about 6.5 min", 6.5, 700, "dialogue train"),
    ("README.md", "3 epochs of 63 steps, about 1.5 min", 1.5, 3 * 63, "finetune classify"),
    ("docs/finetuning.md", "so up to 5 and 50 minutes", 5, 10 * 63, "finetune classify"),
    ("docs/finetuning.md", "so up to 5 and 50 minutes", 50, 10 * 63, "finetune choice"),
]


def table(doc: str, header: str) -> list[list[str]]:
    """The rows of the table whose first line starts with header, header row first, cells stripped."""
    lines = (REPO / doc).read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(header)), None)
    assert start is not None, f"{doc}: no table starting {header!r}"
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        if not set(line) <= set("|-: "):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def numbers(*files: str) -> list[float]:
    return [float(n) for name in files for n in NUMBER.findall((RESULTS / name).read_text(encoding="utf-8"))]


def found(figure: str, source: list[float]) -> bool:
    decimals = len(figure.split(".")[1]) if "." in figure else 0
    value = float(figure.replace(",", "").lstrip("+"))
    return any(round(n * scale, decimals) == value for n in source for scale in SCALES)


@pytest.mark.parametrize("spec", TABLES, ids=[f"{t.doc}:{t.header[2:30]}" for t in TABLES])
def test_every_figure_of_a_results_table_is_in_its_file(spec):
    header, *rows = table(spec.doc, spec.header)
    source = numbers(*spec.files)
    missing = [f"{row[0]} / {column}: {figure}" for row in rows for column, cell in zip(header, row)
               if column not in spec.skip for figure in FIGURE.findall(cell) if not found(figure, source)]
    assert not missing, f"{spec.doc}: figures not in {', '.join(spec.files)}: {missing}"


def prose(doc: str) -> str:
    return " ".join((REPO / doc).read_text(encoding="utf-8").split())


@pytest.mark.parametrize("doc, words, file, figure", PROSE, ids=[p[1] for p in PROSE])
def test_a_measured_figure_in_prose_is_in_its_file(doc, words, file, figure):
    assert words in prose(doc) and file in prose(doc), f"{doc} no longer says {words!r} citing {file}"
    assert found(figure, numbers(file)), f"{figure} is not in {file}"


def seconds_a_step(command: str) -> float:
    """The default job's from its throughput (32 x 128 characters a step); the others as measured."""
    if command == "pretrain":
        rows = [json.loads(line) for line in (RESULTS / "train_cpu.jsonl").read_text(encoding="utf-8").splitlines()]
        return 32 * 128 / next(r["tokens_per_sec"] for r in rows if r["preset"] == "shakespeare-char")
    runs = json.loads((RESULTS / "docs_commands_cpu.json").read_text(encoding="utf-8"))["runs"]
    return next(r["s_per_step"] for r in runs if r["what"].startswith(command))


@pytest.mark.parametrize("doc, words, minutes, steps, command", TIMES, ids=[f"{t[1]} ({t[2]})" for t in TIMES])
def test_a_time_beside_a_command_follows_from_its_measured_rate(doc, words, minutes, steps, command):
    assert words in prose(doc)
    measured = steps * seconds_a_step(command) / 60
    assert abs(measured - minutes) <= 0.1 * minutes, f"{measured:.1f} min, not about {minutes}"


def test_the_finetuning_benchmark_took_the_seconds_its_doc_gives():
    rows = json.loads((RESULTS / "finetune_shakespeare_h200.json").read_text(encoding="utf-8"))["rows"]
    assert "12 runs, 86.4 s in all on an H200" in prose("docs/finetuning.md")
    assert (len(rows), round(sum(row["seconds"] for row in rows), 1)) == (12, 86.4)


def test_a_figure_not_in_the_file_is_caught():
    assert found("25,316", numbers("train_cpu.jsonl")) and found("10.9", [0.109])
    assert not found("25,317", numbers("train_cpu.jsonl"))
