"""`gptkit dialogue extract` on generated Reddit-style dumps of growing size: throughput (MB of dump a
second of wall time, and per CPU second, which a busy machine disturbs less) and the command's peak
memory (max RSS), each size in a fresh process. Peak memory should
stay flat as the dump grows, since a partition, not the dump, is ever held in memory. One JSON line
per size on stdout (benchmarks/results/dialogue_extract_cpu.jsonl holds runs at --partition-mb 32 and 4,
then, marked "build", runs of the index build beside the whole-partition build it replaced).

    python benchmarks/dialogue_extract.py --workdir /tmp/extract --mb 20 200 --partition-mb 32
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.chat.reddit_dump import generate  # noqa: E402

CHUNK = 2_000  # threads generated and shuffled together: threads interleave within each chunk


def write_dump(path: Path, mb: int) -> int:
    """About ``mb`` MB of dump; its size in bytes."""
    with open(path, "w", encoding="utf-8") as f:
        seed = 0
        while f.tell() < mb << 20:
            records = generate(CHUNK, seed=seed)
            random.Random(seed).shuffle(records)
            f.write("".join(json.dumps(r) + "\n" for r in records))
            seed += 1
    return path.stat().st_size


def measure(dump: Path, out: Path, partition_mb: int) -> dict:
    """Run the command in a process of its own; its wall time and peak RSS."""
    code = ("import resource, sys; from gptkit.cli.main import main; sys.argv = sys.argv[1:]\n"
            "try:\n    main()\nfinally:\n"
            "    use = resource.getrusage(resource.RUSAGE_SELF)\n"
            "    print('maxrss_kb', use.ru_maxrss, use.ru_utime + use.ru_stime, file=sys.stderr)")
    args = [sys.executable, "-c", code, "gptkit", "dialogue", "extract", "--input", str(dump), "--out", str(out),
            "--partition-mb", str(partition_mb), "--quiet"]
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(done.stderr)
    rss, cpu = next(line.split()[1:] for line in done.stderr.splitlines() if line.startswith("maxrss_kb"))
    return {"wall_s": round(wall, 1), "cpu_s": round(float(cpu), 1), "peak_rss_mb": round(int(rss) / 1024, 1),
            "report": done.stdout.splitlines()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--mb", type=int, nargs="+", default=[20, 200], help="Dump sizes, in MB.")
    parser.add_argument("--partition-mb", type=int, default=32, help="The command's --partition-mb.")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    for mb in args.mb:
        dump = args.workdir / f"RC_{mb}mb.jsonl"
        size = write_dump(dump, mb)
        result = measure(dump, args.workdir / f"sessions_{mb}mb.jsonl", args.partition_mb)
        print(json.dumps({"dump_mb": round(size / 2**20, 1), "partition_mb": args.partition_mb, **result,
                          "mb_per_s": round(size / 2**20 / result["wall_s"], 2),
                          "mb_per_cpu_s": round(size / 2**20 / result["cpu_s"], 2),
                          "load_average": round(os.getloadavg()[0], 1)}), flush=True)
        dump.unlink()


if __name__ == "__main__":
    main()
