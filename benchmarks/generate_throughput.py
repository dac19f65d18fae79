"""Decoding speed of generate(): new tokens per second with and without the static KV cache.

    python benchmarks/generate_throughput.py --preset gpt2 --batch-size 1 --new-tokens 256
    python benchmarks/generate_throughput.py --preset shakespeare-char --device cpu

Random weights (speed does not depend on them); greedy decoding so both paths do the same work,
and the tokens of the two paths are compared to show the cache changes nothing but the speed.
"""

from __future__ import annotations

import argparse
import time

import torch
from report import emit

from gptkit import GPT, GPTConfig
from gptkit.device import autocast_dtype, resolve_device
from gptkit.inference import SamplingConfig, generate_ids


def timed(fn) -> tuple[float, object]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="gpt2")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--prompt-tokens", type=int, default=32)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--json", help="Append the result as one JSON line to this file.")
    args = p.parse_args()

    device = resolve_device(args.device)
    dtype = autocast_dtype(device, args.dtype) or torch.float32
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset(args.preset)).to(device=device, dtype=dtype).eval()
    prompts = torch.randint(0, model.config.vocab_size, (args.batch_size, args.prompt_tokens)).tolist()
    cfg = SamplingConfig(max_new_tokens=args.new_tokens, temperature=0, stop_at_eot=False)
    result = {"preset": args.preset, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "dtype": str(dtype).removeprefix("torch."), "batch_size": args.batch_size,
              "prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens}
    outputs = {}
    for use_cache in (True, False):
        generate_ids(model, prompts, SamplingConfig(max_new_tokens=8, temperature=0), 0, use_cache)  # warm-up
        seconds, outputs[use_cache] = timed(lambda: generate_ids(model, prompts, cfg, 0, use_cache))
        key = "kv_cache" if use_cache else "no_cache"
        result[f"{key}_tokens_per_sec"] = round(args.batch_size * args.new_tokens / seconds, 1)
    result["speedup"] = round(result["kv_cache_tokens_per_sec"] / result["no_cache_tokens_per_sec"], 2)
    result["same_tokens"] = outputs[True] == outputs[False]
    emit(result, args.json)


if __name__ == "__main__":
    main()
