"""A multi-turn chat through `gptkit serve` with the openai client, and the server's idle memory:
time to first token per turn (does a long conversation answer as fast as a short one?) and
resident memory before the first request, optionally beside another commit's engine in the same run.

    git worktree add /tmp/gptkit-before 431d27b    # the engine before issue 20, outside this checkout
    python benchmarks/serve_chat.py --baseline /tmp/gptkit-before --out benchmarks/results/serve_chat_cpu.json
    python benchmarks/serve_chat.py --preset tiny --turns 2 --message-tokens 10 --reply-tokens 4 --repeats 1   # a quick check

Random weights of --preset with the GPT-2 tokenizer are saved once; every chat gets a fresh server
(`--max-batch 64`, fp32 as the server's `auto` picks, --threads torch threads) that first answers
one unrelated warm-up request. A chat is --turns user messages of --message-tokens random common
words each, streamed (`stream=True`) with greedy --reply-tokens replies, each reply appended to the
conversation as the assistant's message, as a chat client does. Time to first token: from the call
to the first chunk with content. --baseline names a checkout (a git worktree of another commit)
whose `gptkit serve` runs with this venv's packages (PYTHONPATH and working directory there; --code
likewise pins the checkout measured as "new", by default the installed one); each
repeat runs a new conversation through both engines, in alternating order, so background load hits
both alike. Per engine: each idle server's resident memory (after /health answers, before any
request) beside the weights' size, the prefix cache's hits from /metrics (engines that report it),
and each turn's median, least and most time to first token over the repeats. The exit status says
whether both engines gave the same replies.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time

import torch
from openai import OpenAI
from serve_load import TOKENIZER, Server, describe

from gptkit import GPT, GPTConfig
from gptkit.io import write_text

WORDS = ("the king is in his garden and we go to see what news the day brings from town so that all may know "
         "how long this war has been with them there her queen comes now but you will not find any more here").split()


def message(rng: random.Random, tokens: int) -> str:
    """Random common words, exactly ``tokens`` GPT-2 tokens long."""
    text = ""
    while len(TOKENIZER.encode(text + " " + rng.choice(WORDS))) <= tokens:
        text = (text + " " + rng.choice(WORDS)).strip()
    return text


def prometheus(server: Server) -> dict[str, float]:
    """/metrics as name -> value (histogram buckets and labelled counters left out)."""
    _, raw = server.request("GET", "/metrics", None, 30)
    return {line.split()[0]: float(line.split()[1]) for line in raw.decode().splitlines()
            if line and not line.startswith("#") and "{" not in line}


def idle(server: Server) -> float:
    """The server's resident memory (MB) once it answers, before any request."""
    while server.request("GET", "/health", None, 60)[0] != 200:
        time.sleep(0.2)
    time.sleep(1.0)
    return server.rss_mb()


def chat(server: Server, messages: list[str], reply_tokens: int) -> list[dict]:
    """The conversation, one streamed turn at a time; each turn's time to first token and reply."""
    client = OpenAI(base_url=f"http://{server.host}:{server.port}/v1", api_key="unused", max_retries=0, timeout=600)
    history, turns = [], []
    for text in messages:
        history.append({"role": "user", "content": text})
        start, first, reply, usage = time.perf_counter(), None, "", None
        for chunk in client.chat.completions.create(model=server.model, messages=history, max_tokens=reply_tokens,
                                                    temperature=0, stream=True, stream_options={"include_usage": True}):
            if chunk.choices and chunk.choices[0].delta.content:
                first = first or time.perf_counter() - start
                reply += chunk.choices[0].delta.content
            usage = chunk.usage or usage
        turns.append({"ttft_s": round(first, 4) if first else None, "seconds": round(time.perf_counter() - start, 4),
                      "prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                      "reply": reply})
        history.append({"role": "assistant", "content": reply})
    return turns


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="gpt2")
    p.add_argument("--baseline", help="A checkout of another commit (outside this one) whose engine runs beside this one.")
    p.add_argument("--code", help="A checkout whose engine is measured as 'new' (default: the gptkit installed, this one).")
    p.add_argument("--turns", type=int, default=5)
    p.add_argument("--message-tokens", type=int, default=150, help="Tokens of each user message.")
    p.add_argument("--reply-tokens", type=int, default=20, help="max_tokens of each (greedy) reply.")
    p.add_argument("--repeats", type=int, default=5, help="Conversations per engine, each a new one.")
    p.add_argument("--max-batch", type=int, default=64, help="The servers' --max-batch.")
    p.add_argument("--threads", type=int, default=1, help="Torch threads in the servers.")
    p.add_argument("--out", help="Write the results here (JSON).")
    args = p.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the servers'
    engines = {"new": args.code, **({"baseline": args.baseline} if args.baseline else {})}

    torch.manual_seed(0)
    model = GPT(GPTConfig.preset(args.preset, vocab_size=TOKENIZER.vocab_size)).eval()
    weights = {id(t): t.numel() * t.element_size() for t in model.state_dict().values()}  # tied ones once
    result = {"preset": args.preset, "device": "cpu", "dtype": "fp32", "torch_threads": args.threads,
              "max_batch": args.max_batch, "turns": args.turns, "message_tokens": args.message_tokens,
              "reply_tokens": args.reply_tokens, "weights_mb": round(sum(weights.values()) / 2**20, 1),
              "load_before": os.getloadavg()[0], "engines": {}, "chats": []}
    rng = random.Random(0)
    warmup = message(random.Random(-1), args.message_tokens).replace("the", "a")
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, TOKENIZER)
        for repeat in range(args.repeats):
            messages = [message(rng, args.message_tokens) for _ in range(args.turns)]
            order = list(engines) if repeat % 2 == 0 else list(reversed(engines))
            for name in order:
                server = Server(tmp, args.max_batch, args.max_batch, engines[name])
                try:
                    rss_idle = idle(server)
                    server.request("POST", "/v1/completions", json.dumps(
                        {"model": tmp, "prompt": warmup, "max_tokens": 2, "temperature": 0}).encode(), 600)
                    before = prometheus(server)
                    turns = chat(server, messages, args.reply_tokens)
                    after = prometheus(server)
                    rss_after = server.rss_mb()
                finally:
                    server.process.terminate()
                    server.process.wait(timeout=60)
                hits = {k: after[k] - before[k] for k in ("gptkit_prefix_cache_hit_tokens",
                                                          "gptkit_prefix_cache_queried_tokens") if k in after}
                result["engines"][name] = describe(engines[name])
                result["chats"].append({"repeat": repeat, "engine": name, "rss_idle_mb": round(rss_idle, 1),
                                        "rss_after_chat_mb": round(rss_after, 1), **hits, "turns": turns})
                print(json.dumps(result["chats"][-1]), file=sys.stderr)
    result["load_after"] = os.getloadavg()[0]

    for name, summary in result["engines"].items():
        chats = [c for c in result["chats"] if c["engine"] == name]
        idle_mb = [c["rss_idle_mb"] for c in chats]
        summary["rss_idle_mb"] = {"median": statistics.median(idle_mb), "min": min(idle_mb), "max": max(idle_mb)}
        summary["rss_idle_above_weights_mb"] = round(statistics.median(idle_mb) - result["weights_mb"], 1)
        summary["ttft_s"] = []
        for turn in range(args.turns):
            ttft = [c["turns"][turn]["ttft_s"] for c in chats]
            summary["ttft_s"].append({"turn": turn + 1, "prompt_tokens": chats[0]["turns"][turn]["prompt_tokens"],
                                      "median": statistics.median(ttft), "min": min(ttft), "max": max(ttft)})
        per_chat = [c["turns"][-1]["ttft_s"] / c["turns"][0]["ttft_s"] for c in chats]
        summary["last_over_first"] = {"of_medians": round(summary["ttft_s"][-1]["median"] / summary["ttft_s"][0]["median"], 2),
                                      "per_chat": [round(r, 2) for r in per_chat]}
        if "gptkit_prefix_cache_hit_tokens" in chats[0]:
            hit = sum(c["gptkit_prefix_cache_hit_tokens"] for c in chats)
            queried = sum(c["gptkit_prefix_cache_queried_tokens"] for c in chats)
            summary["prefix_cache"] = {"hit_tokens_per_chat": hit / len(chats), "queried_tokens_per_chat": queried / len(chats),
                                       "hit_rate": round(hit / queried, 3)}
    replies = {name: [[t["reply"] for t in c["turns"]] for c in result["chats"] if c["engine"] == name]
               for name in engines}
    result["same_replies"] = all(r == replies["new"] for r in replies.values())
    print(json.dumps({k: v for k, v in result.items() if k != "chats"}, indent=2))
    if args.out:
        write_text(args.out, json.dumps(result, indent=2) + "\n")
    sys.exit(0 if result["same_replies"] else 1)


if __name__ == "__main__":
    main()
