"""Load test of `gptkit serve` on loopback: concurrent streams, malformed requests, memory, and
aggregate tok/s beside batched generate() at the same batch sizes.

    python benchmarks/serve_load.py --out benchmarks/results/serve_load_cpu.json
    python benchmarks/serve_load.py --preset tiny --new-tokens 16 --malformed 100   # a quick check

One server (random weights of --preset with the GPT-2 tokenizer, fp32 as the server's `auto`
picks, --max-batch the largest stream count) gets 1, 8, then the largest number of concurrent
streaming clients (greedy, --new-tokens each, random --prompt-tokens prompts). The largest round
runs twice, each time beside --malformed bad requests (broken JSON, wrong types, unknown models,
prompts over the context, oversized bodies, unknown routes): every stream must end with its usage
and [DONE], every bad request must get a 4xx with OpenAI's error body, /health must stay up, and
the server's resident memory must not grow between the two rounds. tok/s counts completion tokens
over a round's wall time (prefill included); batched generate() (in this process, while the server
idles) is timed over one whole call at the same batch size just before each round, so background
load hits both alike. Everything is bounded by --time-limit; the exit status says whether every
check passed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
from gptkit.inference import SamplingConfig, generate_ids

TOKENIZER = Tokenizer.gpt2()


class Server:
    def __init__(self, model_dir: str, max_batch: int, max_queue: int):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gptkit", "serve", "--model", model_dir, "--port", "0", "--max-batch", str(max_batch),
             "--max-queue", str(max_queue), "--max-body-bytes", "65536"], stdout=subprocess.PIPE, text=True)  # inherits OMP_NUM_THREADS
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


def generate_rate(model: GPT, prompts: list[list[int]], new_tokens: int) -> float:
    """Batched generate()'s new tokens per second over one whole call (prefill included)."""
    cfg = SamplingConfig(max_new_tokens=new_tokens, temperature=0, stop_at_eot=False)
    start = time.perf_counter()
    out = generate_ids(model, prompts, cfg, TOKENIZER.eot_id)
    return round(sum(map(len, out)) / (time.perf_counter() - start), 1)


def remaining(deadline: float) -> float:
    return max(1.0, deadline - time.monotonic())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="gpt2")
    p.add_argument("--streams", default="1,8,64", help="Concurrent streams per round, comma-separated.")
    p.add_argument("--prompt-tokens", type=int, default=16)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--malformed", type=int, default=1000, help="Bad requests beside each largest round.")
    p.add_argument("--time-limit", type=float, default=900, help="Seconds for the whole run.")
    p.add_argument("--threads", type=int, default=1,
                   help="Torch threads, here and in the server (on a shared machine a second thread mostly waits).")
    p.add_argument("--out", help="Write the results here (JSON).")
    args = p.parse_args()
    sizes = [int(s) for s in args.streams.split(",")]
    deadline = time.monotonic() + args.time_limit
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the server's

    torch.manual_seed(0)
    model = GPT(GPTConfig.preset(args.preset, vocab_size=TOKENIZER.vocab_size)).eval()
    rng = random.Random(0)
    # Prompts of ordinary text tokens that decode and re-encode to the same length.
    prompts = [TOKENIZER.encode(" ".join(rng.choice(["the", "king", "is", "in", "garden", "and", "we", "go"])
                                         for _ in range(args.prompt_tokens))) for _ in range(max(sizes))]
    result = {"preset": args.preset, "device": "cpu", "dtype": "fp32", "torch_threads": torch.get_num_threads(),
              "prompt_tokens": len(prompts[0]), "new_tokens": args.new_tokens, "load_before": os.getloadavg()[0],
              "rounds": []}
    generate_ids(model, prompts[:1], SamplingConfig(max_new_tokens=4, temperature=0), TOKENIZER.eot_id)  # warm-up
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, TOKENIZER)
        server = Server(tmp, max(sizes), max(sizes) + 8)
        try:
            context = model.config.block_size
            for size in sizes:  # generate() and the server in turn, so background load hits both alike
                rate = generate_rate(model, prompts[:size], args.new_tokens)
                result["rounds"].append({**round_of(server, prompts[:size], args.new_tokens, 0, context,
                                                    remaining(deadline)), "generate_tokens_per_sec": rate})
            rss = [server.rss_mb()]
            for _ in range(2):
                result["rounds"].append(round_of(server, prompts[:max(sizes)], args.new_tokens, args.malformed, context,
                                                 remaining(deadline)))
                rss.append(server.rss_mb())
            result["rss_mb"] = [round(r, 1) for r in rss]
            result["healthy"] = server.request("GET", "/health", None, 10)[0] == 200
        finally:
            server.process.terminate()
            result["exit_status"] = server.process.wait(timeout=60)
    result["load_after"] = os.getloadavg()[0]
    checks = {"every stream completed": all(r["completed"] == r["streams"] for r in result["rounds"]),
              "every malformed request got a 4xx error body": all(r["malformed_answered_4xx"] == r["malformed"]
                                                                  for r in result["rounds"]),
              "healthy after": result["healthy"], "clean exit": result["exit_status"] == 0,
              "memory flat (second heavy round grew < 5%)": result["rss_mb"][2] <= 1.05 * result["rss_mb"][1]}
    result["checks"] = checks
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    sys.exit(0 if all(checks.values()) else 1)


if __name__ == "__main__":
    main()
