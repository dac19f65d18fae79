"""`gptkit prepare` throughput and peak memory, next to tiktoken encoding the same text on one thread.

    python benchmarks/prepare_throughput.py                      # 200 MB, 2 workers
    python benchmarks/prepare_throughput.py --copies 80 --workers 4 --json benchmarks/results/prepare_throughput_cpu.json

Corpus: the bundled Shakespeare repeated ``--copies`` times (40 copies: 202 MB), written twice: as
one JSON Lines file of 1,680 documents, and as one text file holding a single document of the same
size. Timing: the real command (`python -m gptkit prepare --tokenizer gpt2`): "prepare" is the time
the command reports from loading the tokenizer to writing meta.json (files in, shards and meta out),
"command" adds the interpreter's start-up and imports; tiktoken (the packaged GPT-2 files,
``encode_ordinary`` of every document on one thread) runs in the same session, and again on
``--workers`` threads: what the machine's cores give at that moment, the bound for prepare. Memory:
the peak resident set size of the prepare process, and its CPU seconds (from ``wait4``). MB are 10^6
bytes of UTF-8 text. Other processes on the machine slow everything down: the load is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gptkit.data import shakespeare
from gptkit.data.encoders import gpt2_tiktoken


def build_corpus(folder: Path, copies: int) -> list[str]:
    """The works, ``copies`` times over, as corpus.jsonl (one work a line) and one_document.txt."""
    texts = [w["text"] for w in shakespeare()] * copies
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as f:
        for text in texts:
            f.write(json.dumps({"text": text}) + "\n")
    with open(folder / "one_document.txt", "w", encoding="utf-8") as f:
        f.writelines(texts)
    return texts


def tiktoken_rate(texts: list[str], threads: int = 1) -> dict:
    """MB/s, CPU seconds and tokens of tiktoken's GPT-2 encoding of ``texts`` on ``threads`` threads
    (more than one: what the machine's cores give right now, an upper bound for prepare)."""
    encoding = gpt2_tiktoken()

    def encode(part: list[str]) -> int:
        return sum(len(encoding.encode_ordinary(t)) for t in part)

    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(threads) as pool:
        tokens = sum(pool.map(encode, [texts[i::threads] for i in range(threads)]))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"mb_per_s": sum(len(t.encode("utf-8")) for t in texts) / 1e6 / seconds, "cpu_s": cpu, "tokens": tokens}


def prepare_run(source: Path, out: Path, workers: int) -> dict:
    """Seconds, peak RSS and token count of the real prepare command on ``source``."""
    command = [sys.executable, "-m", "gptkit", "prepare", "--input", str(source), "--tokenizer", "gpt2",
               "--workers", str(workers), "--out", str(out), "--quiet"]
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"prepare failed:\n{proc.stderr.read().decode()}")
    seconds = float(re.search(r"MB in ([\d,.]+) s", stdout)[1].replace(",", ""))  # the command's own summary
    meta = json.loads((out / "meta.json").read_text())
    mb = sum(s["bytes"] for s in meta["splits"].values()) / 1e6
    return {"text_mb": round(mb, 1), "tokens": sum(s["tokens"] for s in meta["splits"].values()),
            "prepare_s": seconds, "command_s": round(wall, 2), "mb_per_s": round(mb / seconds, 2),
            "command_mb_per_s": round(mb / wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024)}


def scheduling() -> str:
    """The priority this benchmark ran at (on Linux, its session's autogroup nice decides its CPU share)."""
    autogroup = Path("/proc/self/autogroup")
    return f"nice {os.nice(0)}" + (f", {autogroup.read_text().strip()}" if autogroup.exists() else "")


def run(args) -> dict:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        texts = build_corpus(folder, args.copies)
        reference = tiktoken_rate(texts)
        bound = tiktoken_rate(texts, args.workers)
        runs = {"jsonl": prepare_run(folder / "corpus.jsonl", folder / "out_jsonl", args.workers),
                "one_document": prepare_run(folder / "one_document.txt", folder / "out_one", args.workers)}
    for result in runs.values():
        result["ratio"] = round(result["mb_per_s"] / reference["mb_per_s"], 2)
        result["command_ratio"] = round(result["command_mb_per_s"] / reference["mb_per_s"], 2)
    assert runs["jsonl"]["tokens"] == reference["tokens"] + len(texts)  # every document, preceded by end-of-text
    return {"workers": args.workers, "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
            "load_1min_before": round(load_before, 2), "load_1min_after": round(os.getloadavg()[0], 2),
            "scheduling": scheduling(),
            "tiktoken_single_thread_mb_per_s": round(reference["mb_per_s"], 2),
            "tiktoken_cpu_s": round(reference["cpu_s"], 2), "target_ratio": round(0.8 * args.workers, 2),
            "tiktoken_threads_mb_per_s": round(bound["mb_per_s"], 2), "tiktoken_threads_cpu_s": round(bound["cpu_s"], 2),
            "tiktoken_threads_ratio": round(bound["mb_per_s"] / reference["mb_per_s"], 2),
            "prepare": runs}


def table(result: dict) -> str:
    rows = [f"| tiktoken, 1 thread (reference) | {result['tiktoken_single_thread_mb_per_s']:.1f} | 1.00 | | "
            f"{result['tiktoken_cpu_s']:.0f} | |",
            f"| tiktoken, {result['workers']} threads (what the machine gives) | {result['tiktoken_threads_mb_per_s']:.1f} | "
            f"{result['tiktoken_threads_ratio']:.2f} | | {result['tiktoken_threads_cpu_s']:.0f} | |"]
    for name, r in result["prepare"].items():
        rows.append(f"| gptkit prepare, {result['workers']} workers, {name} ({r['text_mb']:.0f} MB) | {r['mb_per_s']:.1f} | "
                    f"{r['ratio']:.2f} | {r['command_mb_per_s']:.1f} ({r['command_ratio']:.2f}) | {r['cpu_s']:.0f} | {r['peak_rss_mib']} |")
    head = ["| run | MB/s | ratio | MB/s with start-up (ratio) | CPU s | peak RSS (MiB) |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    return "\n".join([*head, *rows, f"\n1-minute load: {result['load_1min_before']} before, {result['load_1min_after']} after; "
                                     f"{result['scheduling']}"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--copies", type=int, default=40, help="Copies of the bundled Shakespeare (5.06 MB each).")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", help="Write the result to this JSON file.")
    args = p.parse_args()
    result = run(args)
    print(table(result))
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
