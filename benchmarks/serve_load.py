"""Load test of `gptkit serve` on loopback: concurrent streams, malformed requests, memory, and
aggregate tok/s beside batched generate() at the same batch sizes, optionally beside another
commit's engine in the same run.

    python benchmarks/serve_load.py --out benchmarks/results/serve_load_cpu.json
    git worktree add /tmp/gptkit-before 431d27b    # the engine before issue 20, outside this checkout
    python benchmarks/serve_load.py --baseline /tmp/gptkit-before --repeats 5 --out benchmarks/results/serve_load_cpu.json
    python benchmarks/serve_load.py --preset tiny --new-tokens 16 --malformed 100   # a quick check

One server (random weights of --preset with the GPT-2 tokenizer, fp32 as the server's `auto`
picks, or --quantize's weights; --max-batch the largest stream count), warmed up by one short
request, gets 1, 8, then the largest number of concurrent streaming clients (greedy, --new-tokens
each, random --prompt-tokens prompts), --repeats times. With --baseline, a second server runs
another checkout's gptkit (a git worktree of another commit, with this venv's packages: PYTHONPATH
and working directory there) on the same weights, always fp32, and each round runs on both
servers, in alternating order, so background load hits both alike (--code likewise pins the
checkout measured as "new"). Then the largest round runs twice more on the new server, each time
beside --malformed bad requests (broken JSON, wrong types, unknown models, prompts over the
context, oversized bodies, unknown routes): every stream must end with its usage and [DONE], every
bad request must get a 4xx with OpenAI's error body, /health must stay up, and the server's
resident memory must not grow between the two rounds. tok/s counts completion tokens over a round's
wall time (prefill included); batched generate() of the same checkout (in a child process, while
the servers idle) is timed over one whole call at the same batch size just before each round.
`summary` gives per stream count each engine's median, least and most tok/s, its generate()'s, and
the ratios: of the medians, and of each round to the generate() call before it. Everything is
bounded by --time-limit; the exit status says whether every check passed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

import torch

from gptkit import GPT, GPTConfig, Tokenizer
from gptkit.io import write_text

TOKENIZER = Tokenizer.gpt2()


def environment(code: str | None) -> tuple[dict, Path | None, str]:
    """The environment and working directory of a child process that imports gptkit from ``code`` (a
    checkout: another commit's engine, with this venv's packages) or, None, the installed one; and
    the file it imports gptkit from, checked."""
    env, cwd = dict(os.environ), None  # inherits OMP_NUM_THREADS
    if code:
        env["PYTHONPATH"], cwd = str(Path(code).resolve()), Path(code).resolve()
    module = subprocess.run([sys.executable, "-c", "import gptkit; print(gptkit.__file__)"], env=env, cwd=cwd,
                            capture_output=True, text=True, check=True).stdout.strip()
    if code and not Path(module).is_relative_to(cwd):
        raise SystemExit(f"{code} does not hold the gptkit a child process would import ({module})")
    return env, cwd, module


def describe(code: str | None) -> dict:
    """Where an engine's code comes from: the file gptkit is imported from, its commit, and whether
    gptkit/ differs from that commit (uncommitted edits)."""
    module = environment(code)[2]

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(Path(module).parents[1]), *args], capture_output=True,
                              text=True).stdout.strip()

    return {"code": code or ".", "imports": module, "commit": git("rev-parse", "--short", "HEAD"),
            "gptkit_edited": bool(git("status", "--porcelain", "--", "gptkit"))}


class Server:
    """``gptkit serve`` in a child process, running the gptkit of ``code`` (see environment)."""

    def __init__(self, model_dir: str, max_batch: int, max_queue: int, code: str | None = None, *extra: str):
        env, cwd, self.module = environment(code)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gptkit", "serve", "--model", model_dir, "--port", "0", "--max-batch", str(max_batch),
             "--max-queue", str(max_queue), *extra], stdout=subprocess.PIPE, text=True, env=env, cwd=cwd)
        url = self.process.stdout.readline().split()[-1]
        self.host, self.port = urlsplit(url).hostname, urlsplit(url).port
        self.model = model_dir

    def request(self, method: str, path: str, body: bytes | None, timeout: float) -> tuple[int, bytes]:
        conn = HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024


def stream(server: Server, prompt: list[int], new_tokens: int, timeout: float) -> int:
    """One streaming completion; its completion tokens if it ended properly (usage, then [DONE]), else -1."""
    body = {"model": server.model, "prompt": TOKENIZER.decode(prompt), "max_tokens": new_tokens, "temperature": 0,
            "stream": True, "stream_options": {"include_usage": True}}
    status, raw = server.request("POST", "/v1/completions", json.dumps(body).encode(), timeout)
    events = [e.removeprefix("data: ") for e in raw.decode().split("\n\n") if e]
    if status != 200 or events[-1:] != ["[DONE]"] or len(events) < 2:
        return -1
    usage = json.loads(events[-2]).get("usage")
    return usage["completion_tokens"] if usage else -1


def malformed(server: Server, i: int, context: int, timeout: float) -> bool:
    """A bad request of one of six kinds; True if it got a 4xx with OpenAI's error body."""
    kind = i % 6
    bodies = [b"{broken", json.dumps({"model": server.model, "prompt": "x", "temperature": "hot"}).encode(),
              json.dumps({"model": "no-such-model", "prompt": "x"}).encode(),
              json.dumps({"model": server.model, "prompt": "hi " * context, "max_tokens": 8}).encode(),
              b'{"prompt": "' + b"x" * 70_000 + b'"}', b"{}"]
    path = "/v1/nothing" if kind == 5 else "/v1/completions"
    status, raw = server.request("POST", path, bodies[kind], timeout)
    try:
        error = json.loads(raw)["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return 400 <= status < 500 and {"message", "type", "param", "code"} <= error.keys()


def round_of(server: Server, prompts: list[list[int]], new_tokens: int, bad: int, context: int, timeout: float) -> dict:
    with ThreadPoolExecutor(len(prompts) + 8) as pool:
        start = time.perf_counter()
        streams = [pool.submit(stream, server, p, new_tokens, timeout) for p in prompts]
        bad_done = list(pool.map(lambda i: malformed(server, i, context, timeout), range(bad)))
        tokens = [s.result() for s in streams]
        seconds = time.perf_counter() - start
    return {"streams": len(prompts), "completed": sum(t >= 0 for t in tokens), "tokens": sum(max(t, 0) for t in tokens),
            "seconds": round(seconds, 2), "tokens_per_sec": round(sum(max(t, 0) for t in tokens) / seconds, 1),
            "malformed": bad, "malformed_answered_4xx": sum(bad_done)}


GENERATE = """
import json, sys, time
import gptkit
from gptkit import GPT, Tokenizer
from gptkit.inference import SamplingConfig, generate_ids
model = (gptkit.load(sys.argv[1], quantize=sys.argv[2])[0] if len(sys.argv) > 2 else GPT.from_pretrained(sys.argv[1])).eval()
eot = Tokenizer.gpt2().eot_id
generate_ids(model, [[eot]], SamplingConfig(max_new_tokens=4, temperature=0), eot)  # warm-up
print("ready", flush=True)
for line in sys.stdin:
    prompts, new_tokens = json.loads(line)
    start = time.perf_counter()
    out = generate_ids(model, prompts, SamplingConfig(max_new_tokens=new_tokens, temperature=0, stop_at_eot=False), eot)
    print(round(sum(map(len, out)) / (time.perf_counter() - start), 1), flush=True)
"""


class Generator:
    """Batched generate() of the gptkit of ``code`` (the server's) in a child process: new tokens per
    second over one whole call (prefill included)."""

    def __init__(self, model_dir: str, code: str | None = None, quantize: str | None = None):
        env, cwd, _ = environment(code)
        self.process = subprocess.Popen([sys.executable, "-c", GENERATE, model_dir, *([quantize] if quantize else [])],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=cwd)
        assert self.process.stdout.readline().strip() == "ready"

    def rate(self, prompts: list[list[int]], new_tokens: int) -> float:
        self.process.stdin.write(json.dumps([prompts, new_tokens]) + "\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline())


def remaining(deadline: float) -> float:
    return max(1.0, deadline - time.monotonic())


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 1), "min": min(values), "max": max(values)}


def summarize(rounds: list[dict], sizes: list[int], engines: list[str]) -> dict:
    """Per engine and stream count: median, least and most tok/s over the repeats; the ratios of medians."""
    summary = {}
    for size in sizes:
        row = {name: spread([r["tokens_per_sec"] for r in rounds if r["engine"] == name and r["streams"] == size])
               for name in engines}
        for name in engines:
            mine = [r for r in rounds if r["engine"] == name and r["streams"] == size]
            row[f"{name}_generate"] = spread([r["generate_tokens_per_sec"] for r in mine])
            row[f"{name}_over_its_generate"] = {
                "of_medians": round(row[name]["median"] / row[f"{name}_generate"]["median"], 2),
                "per_round": [round(r["tokens_per_sec"] / r["generate_tokens_per_sec"], 2) for r in mine]}
        if "baseline" in row:
            row["new_over_baseline"] = round(row["new"]["median"] / row["baseline"]["median"], 2)
            row["new_generate_over_baseline_generate"] = round(row["new_generate"]["median"]
                                                              / row["baseline_generate"]["median"], 2)
        summary[str(size)] = row
    return summary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="gpt2")
    p.add_argument("--baseline", help="A checkout of another commit (outside this one) whose engine runs beside this one.")
    p.add_argument("--code", help="A checkout whose engine is measured as 'new' (default: the gptkit installed, this one).")
    p.add_argument("--streams", default="1,8,64", help="Concurrent streams per round, comma-separated.")
    p.add_argument("--repeats", type=int, default=1, help="Times each round runs (on each server).")
    p.add_argument("--quantize", choices=["int8", "int4"],
                   help="This checkout's server (and its generate()) run with these weights; the baseline stays fp32.")
    p.add_argument("--prompt-tokens", type=int, default=16)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--malformed", type=int, default=1000, help="Bad requests beside each largest round.")
    p.add_argument("--time-limit", type=float, default=1800, help="Seconds for the whole run.")
    p.add_argument("--threads", type=int, default=1,
                   help="Torch threads, here and in the server (on a shared machine a second thread mostly waits).")
    p.add_argument("--out", help="Write the results here (JSON).")
    args = p.parse_args()
    sizes = [int(s) for s in args.streams.split(",")]
    deadline = time.monotonic() + args.time_limit
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the servers'

    torch.manual_seed(0)
    model = GPT(GPTConfig.preset(args.preset, vocab_size=TOKENIZER.vocab_size)).eval()
    rng = random.Random(0)
    # Prompts of ordinary text tokens that decode and re-encode to the same length.
    prompts = [TOKENIZER.encode(" ".join(rng.choice(["the", "king", "is", "in", "garden", "and", "we", "go"])
                                         for _ in range(args.prompt_tokens))) for _ in range(max(sizes))]
    result = {"preset": args.preset, "device": "cpu", "dtype": "fp32", "quantize": args.quantize,
              "torch_threads": torch.get_num_threads(),
              "prompt_tokens": len(prompts[0]), "new_tokens": args.new_tokens, "max_batch": max(sizes),
              "load_before": os.getloadavg()[0], "engines": {}, "rounds": []}
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, TOKENIZER)
        codes = {"new": args.code, **({"baseline": args.baseline} if args.baseline else {})}
        servers, generators = {}, {}
        try:
            for name, code in codes.items():
                quantize = args.quantize if name == "new" else None
                servers[name] = Server(tmp, max(sizes), max(sizes) + 8, code, "--max-body-bytes", "65536",
                                       *(["--quantize", quantize] if quantize else []))
                generators[name] = Generator(tmp, code, quantize)
            context = model.config.block_size
            for name, server in servers.items():
                while server.request("GET", "/health", None, 60)[0] != 200:
                    time.sleep(0.2)
                time.sleep(1.0)
                result["engines"][name] = {**describe(codes[name]), "rss_idle_mb": round(server.rss_mb(), 1)}
                round_of(server, prompts[:1], 4, 0, context, remaining(deadline))  # warm-up
            for repeat in range(args.repeats):
                order = list(servers) if repeat % 2 == 0 else list(reversed(servers))
                for size in sizes:  # generate() and the servers in turn, so background load hits all alike
                    for name in order:
                        rate = generators[name].rate(prompts[:size], args.new_tokens)
                        result["rounds"].append({"engine": name, "repeat": repeat, **round_of(
                            servers[name], prompts[:size], args.new_tokens, 0, context, remaining(deadline)),
                            "generate_tokens_per_sec": rate})
            server = servers["new"]
            rss = [server.rss_mb()]
            for _ in range(2):
                result["rounds"].append({"engine": "new", **round_of(server, prompts[:max(sizes)], args.new_tokens,
                                                                     args.malformed, context, remaining(deadline))})
                rss.append(server.rss_mb())
            result["rss_mb"] = [round(r, 1) for r in rss]
            result["healthy"] = server.request("GET", "/health", None, 10)[0] == 200
        finally:
            for generator in generators.values():
                generator.process.stdin.close()
                generator.process.wait(timeout=60)
            for name, server in servers.items():
                server.process.terminate()
                result["engines"].setdefault(name, {})["exit_status"] = server.process.wait(timeout=60)
    result["load_after"] = os.getloadavg()[0]
    result["summary"] = summarize([r for r in result["rounds"] if not r["malformed"]], sizes, list(servers))
    checks = {"every stream completed": all(r["completed"] == r["streams"] for r in result["rounds"]),
              "every malformed request got a 4xx error body": all(r["malformed_answered_4xx"] == r["malformed"]
                                                                  for r in result["rounds"]),
              "healthy after": result["healthy"],
              "clean exit": all(e["exit_status"] == 0 for e in result["engines"].values()),
              "memory flat (second heavy round grew < 5%)": result["rss_mb"][2] <= 1.05 * result["rss_mb"][1]}
    result["checks"] = checks
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=2))
    if args.out:
        write_text(args.out, json.dumps(result, indent=2) + "\n")
    sys.exit(0 if all(checks.values()) else 1)


if __name__ == "__main__":
    main()
