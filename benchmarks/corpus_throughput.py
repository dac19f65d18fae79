"""Throughput and peak memory of `gptkit corpus` dedup, decontaminate and filter, on a generated web-like
corpus and on one 10x its size, beside the well-known tool for each step on the same input in the same run:

- dedup: datasketch's own loop (MinHash.update_batch per document, MinHashLSH query then insert,
  the same 5-gram shingles and permutations) and, with --datatrove-python, datatrove's four MinHash
  stages (signatures, buckets, clusters, filter; one process, one task
  per band for buckets) run by an interpreter that has datatrove;
- decontaminate: lm-eval's Janitor (GPT-3's 13-gram decontamination) with the same tasks;
- filter: with --datatrove-python, datatrove's GopherQualityFilter (the same rules) on the same input.

Every run is a process of its own, measured from outside (wall time; peak resident memory from
wait4). MB/s counts the characters of the documents' text. The corpus: documents of 150-400 words
drawn from a Zipf vocabulary, 5% planted exact copies (some re-cased or re-spaced) and 10% edited
copies (0.5-2% of words replaced, deleted or inserted); dedup's recall and precision against them
are reported too.

    python benchmarks/corpus_throughput.py --docs 10000 --scale 10 --datatrove-python /tmp/dtvenv/bin/python \
        --out benchmarks/results/corpus_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gptkit.io import write_text  # noqa: E402
from tests.corpus.synthetic import planted_corpus, write_jsonl  # noqa: E402

NUM_PERM = 100  # gptkit's default 20 bands x 5 rows


# Forks and execs the command and reports its rusage. It runs in a fresh interpreter of its own: a
# child forked from this process (which holds the corpora) would start with its peak RSS.
LAUNCHER = """import json, os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(json.dumps({"status": os.waitstatus_to_exitcode(status), "seconds": time.perf_counter() - started,
                  "maxrss_kib": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}), file=sys.stderr)
"""


def measure(argv: list[str], cwd: Path | None = None, env: dict | None = None) -> dict:
    """Run ``argv``; its wall time, peak RSS (MiB) and output."""
    proc = subprocess.run([sys.executable, "-c", LAUNCHER, *argv], cwd=cwd, env=env, capture_output=True, text=True)
    usage = json.loads(proc.stderr.strip().splitlines()[-1])
    out = proc.stdout + "\n".join(proc.stderr.strip().splitlines()[:-1])
    if usage["status"] != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({usage['status']}):\n{out}")
    return {"seconds": round(usage["seconds"], 3), "peak_rss_mib": round(usage["maxrss_kib"] / 1024, 1),
            "cpu_s": round(usage["cpu_s"], 2), "output": [line for line in out.strip().splitlines() if line][-3:],
            "stdout_last": (proc.stdout.strip().splitlines() or [""])[-1]}


def gptkit(*args: str) -> list[str]:
    return [sys.executable, "-m", "gptkit", "corpus", *args, "--quiet"]


# --- the peers, each run as `python corpus_throughput.py --peer NAME INPUT ...` ---------------------------

def peer_datasketch(path: str, report: str) -> None:
    from datasketch import MinHash, MinHashLSH

    from gptkit.corpus.text import clean

    lsh = MinHashLSH(threshold=0.8, num_perm=NUM_PERM)

    def duplicate(i: int, text: str) -> bool:
        ws = clean(text).split()
        m = MinHash(num_perm=NUM_PERM, seed=1)
        m.update_batch([" ".join(ws[j:j + 5]).encode() for j in range(max(1, len(ws) - 4))])
        if lsh.query(m):
            return True
        lsh.insert(str(i), m)
        return False

    timed_loop(path, report, duplicate)


def peer_janitor(path: str, report: str) -> None:
    from lm_eval.decontamination.janitor import Janitor

    from gptkit.corpus.decontaminate import load_task_texts, shipped_tasks

    janitor = Janitor()  # GPT-3's: 13-grams, lowercased, punctuation removed
    for name in shipped_tasks():
        for text in load_task_texts(name).texts:
            janitor.register_contaminant(text)
    timed_loop(path, report, lambda i, text: janitor.clean_python(text) != [text])


def timed_loop(path: str, report: str, removes) -> None:
    """A peer's own loop over the documents, timed; ``removes(i, text)`` says whether it drops document i."""
    removed, chars = [], 0
    started = time.perf_counter()
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            text = json.loads(line)["text"]
            chars += len(text)
            if removes(i, text):
                removed.append(i)
    Path(report).write_text(json.dumps({"removed": removed, "chars": chars, "loop_s": time.perf_counter() - started}))


DATATROVE = r'''
import json, sys, time
from datatrove.executor.local import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                              MinhashDedupFilter, MinhashDedupSignature)
from datatrove.pipeline.filters import GopherQualityFilter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.hashing import HashConfig
from datatrove.utils.word_tokenizers import WordTokenizer


class Whitespace(WordTokenizer):  # NLTK's English tokenizer needs data downloaded; gptkit splits on whitespace
    def word_tokenize(self, text): return text.split()
    def sent_tokenize(self, text): return [text]
    def span_tokenize(self, text): raise NotImplementedError


step, folder, work = sys.argv[1], sys.argv[2], sys.argv[3]
times = {}
if step == "dedup":
    config = MinhashConfig(n_grams=5, num_buckets=20, hashes_per_bucket=5, hash_config=HashConfig(precision=32))
    stages = [
        ("signatures", [JsonlReader(folder), MinhashDedupSignature(f"{work}/sigs", config=config, language=Whitespace())]),
        ("buckets", [MinhashDedupBuckets(f"{work}/sigs", f"{work}/buckets", config=config)]),
        ("clusters", [MinhashDedupCluster(f"{work}/buckets", f"{work}/remove_ids", config=config)]),
        ("filter", [JsonlReader(folder), MinhashDedupFilter(f"{work}/remove_ids"), JsonlWriter(f"{work}/out")]),
    ]
    for name, pipeline in stages:  # one process; the buckets stage is one task per band, run one after another
        started = time.perf_counter()
        tasks = config.num_buckets if name == "buckets" else 1
        LocalPipelineExecutor(pipeline, tasks=tasks, workers=1, logging_dir=f"{work}/logs/{name}").run()
        times[name] = time.perf_counter() - started
else:
    started = time.perf_counter()
    LocalPipelineExecutor([JsonlReader(folder), GopherQualityFilter(language=Whitespace()), JsonlWriter(f"{work}/out")],
                          tasks=1, workers=1, logging_dir=f"{work}/logs/filter").run()
    times["filter"] = time.perf_counter() - started
print(json.dumps(times))
'''


# --- the benchmark -------------------------------------------------------------------------------------

def quality(records: list[dict], truth: dict, out: Path) -> dict:
    kept = {json.loads(line)["id"] for p in sorted(out.glob("*.jsonl")) for line in p.open(encoding="utf-8")}
    removed = {i for i, r in enumerate(records) if r["id"] not in kept}
    return score(removed, truth)


def score(removed: set[int], truth: dict) -> dict:
    near = {int(i) for i, s in truth["similarity"].items() if s >= 0.8}
    copies = set(truth["exact"]) | set(truth["near"])
    return {"planted_exact": len(truth["exact"]), "planted_near_jaccard_0.8": len(near),
            "recall_exact": round(len(removed & set(truth["exact"])) / max(1, len(truth["exact"])), 4),
            "recall_near": round(len(removed & near) / max(1, len(near)), 4),
            "precision": round(len(removed & copies) / max(1, len(removed)), 4), "removed": len(removed)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=10_000, help="Documents of the smaller corpus.")
    ap.add_argument("--scale", type=int, default=10, help="The larger corpus is this many times the smaller.")
    ap.add_argument("--datatrove-python", help="A Python interpreter with datatrove installed (its own venv).")
    ap.add_argument("--out", default="benchmarks/results/corpus_cpu.json")
    ap.add_argument("--peer", help=argparse.SUPPRESS)
    ap.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer:
        {"datasketch": peer_datasketch, "janitor": peer_janitor}[args.peer](*args.args)
        return

    work = Path(tempfile.mkdtemp(prefix="corpus_bench_"))
    sizes = {"1x": args.docs, f"{args.scale}x": args.docs * args.scale}
    corpora = {}
    for name, n in sizes.items():
        records, truth = planted_corpus(n, seed=11)
        folder = work / f"in-{name}"
        folder.mkdir()
        write_jsonl(folder / "corpus.jsonl", records)
        corpora[name] = (folder / "corpus.jsonl", records, truth, sum(len(r["text"]) for r in records))
        print(f"{name}: {n:,} documents, {corpora[name][3] / 1e6:.1f} MB of text", flush=True)

    # the classifier filter uses: Shakespeare (reference) against the smaller corpus (raw)
    ref = work / "reference.jsonl"
    from gptkit.data import shakespeare

    write_jsonl(ref, [{"text": w["text"][i:i + 3000]} for w in shakespeare() for i in range(0, len(w["text"]), 3000)])
    classifier = measure(gptkit("classifier", "--reference", str(ref), "--raw", str(corpora["1x"][0]), "--out",
                                str(work / "c.npz"))[:-1])
    rows = []

    def row(step: str, size: str, system: str, result: dict, mb: float, inside_seconds: float, **extra) -> dict:
        """A measured run: MB/s inside the tool (reading to writing, no start-up) and with start-up."""
        r = {"step": step, "corpus": size, "system": system, "mb": round(mb, 2), "seconds": result["seconds"],
             "inside_seconds": inside_seconds, "mb_per_s": round(mb / inside_seconds, 2),
             "mb_per_s_with_startup": round(mb / result["seconds"], 2), "peak_rss_mib": result["peak_rss_mib"],
             "cpu_s": result["cpu_s"], **extra}
        rows.append(r)
        print(json.dumps(r), flush=True)
        return r

    for size, (path, records, truth, chars) in corpora.items():
        mb = chars / 1e6
        out = work / f"dedup-{size}"
        result = measure(gptkit("dedup", "--input", str(path), "--out", str(out)))
        report = json.loads((out / "report.json").read_text())
        row("dedup", size, "gptkit corpus dedup", result, mb, quality=quality(records, truth, out),
            stage_seconds=report["extra"]["stage_seconds"], inside_seconds=report["seconds"], summary=report["summary"])
        out = work / f"decontaminate-{size}"
        result = measure(gptkit("decontaminate", "--input", str(path), "--out", str(out)))
        report = json.loads((out / "report.json").read_text())
        row("decontaminate", size, "gptkit corpus decontaminate", result, mb, inside_seconds=report["seconds"],
            summary=report["summary"])
        out = work / f"filter-{size}"
        result = measure(gptkit("filter", "--input", str(path), "--out", str(out), "--classifier", str(work / "c.npz")))
        report = json.loads((out / "report.json").read_text())
        row("filter", size, "gptkit corpus filter (rules + classifier)", result, mb, inside_seconds=report["seconds"],
            summary=report["summary"])
        out = work / f"rules-{size}"
        result = measure(gptkit("filter", "--input", str(path), "--out", str(out)))
        report = json.loads((out / "report.json").read_text())
        row("filter", size, "gptkit corpus filter (rules)", result, mb, inside_seconds=report["seconds"],
            summary=report["summary"])

    # the peers, on the smaller corpus
    path, records, truth, chars = corpora["1x"]
    mb = chars / 1e6
    me = [sys.executable, str(Path(__file__).resolve()), "--peer"]
    result = measure(me + ["datasketch", str(path), str(work / "datasketch.json")])
    peer = json.loads((work / "datasketch.json").read_text())
    row("dedup", "1x", f"datasketch loop (MinHash {NUM_PERM} perms + MinHashLSH 0.8)", result, mb,
        quality=score(set(peer["removed"]), truth), inside_seconds=round(peer["loop_s"], 3))
    result = measure(me + ["janitor", str(path), str(work / "janitor.json")])
    janitor = json.loads((work / "janitor.json").read_text())
    row("decontaminate", "1x", "lm-eval Janitor (13-grams, python)", result, mb, removed=len(janitor["removed"]),
        inside_seconds=round(janitor["loop_s"], 3))
    if args.datatrove_python:
        script = work / "datatrove_run.py"
        script.write_text(DATATROVE)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        for step in ("dedup", "filter"):
            result = measure([args.datatrove_python, str(script), step, str(path.parent), str(work / f"dt-{step}")], env=env)
            times = json.loads(result["stdout_last"])
            extra = {"stage_seconds": {k: round(v, 3) for k, v in times.items()},
                     "inside_seconds": round(sum(times.values()), 3)}
            if step == "dedup":
                kept = {json.loads(line)["id"] for p in (work / "dt-dedup" / "out").glob("*") for line in
                        __import__("gzip").open(p, "rt", encoding="utf-8")}
                extra["quality"] = score({i for i, r in enumerate(records) if r["id"] not in kept}, truth)
            row(step, "1x", "datatrove " + ("MinHash, 4 stages (20 x 5)" if step == "dedup" else "GopherQualityFilter"),
                result, mb, **extra)

    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "date": time.strftime("%Y-%m-%d"),
        "corpora": {size: {"documents": len(c[1]), "mb": round(c[3] / 1e6, 2)} for size, c in corpora.items()},
        "classifier_fit": {"seconds": classifier["seconds"], "peak_rss_mib": classifier["peak_rss_mib"],
                           "output": classifier["output"]},
        "rows": rows,
    }
    write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
