"""One decode step of the engine at a batch size and context length, with the KV cache's reads as
they are and with each of their two shortcuts turned off, every measurement in a fresh process.

The engine attends over the paged cache by gathering each row's keys and values for every layer.
Two things make that cheap, and this script measures each against the plain way, alternating:

- ``reused``: the gathers go into two buffers reused layer after layer and step after step;
  ``fresh`` allocates them anew per layer, as before. A fresh multi-MB buffer per layer is mapped
  and unmapped by the allocator, and its page faults can cost more than the copy.
- ``in place``: a lone sequence whose blocks follow one another is read where it lies, no gather;
  ``gathered`` copies it like any batch.

Each process builds GPT-2 124M (random weights, fp32 on oneDNN's matmul as `gptkit generate
--quantize none` runs it, or --quantize int8), prefills ``--batch`` random prompts of ``--prompt``
tokens, takes two steps, then times ``--steps`` decode steps: min and median ms. A fresh process
matters: the allocator's state after the prefill is what a server or `gptkit generate` starts from.

    python benchmarks/decode_step.py --shapes 64x200 16x400 16x32 1x900 --rounds 2 --out benchmarks/results/decode_step_cpu.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from report import emit, results_so_far

VARIANTS = {"reused": {}, "fresh": {"fresh_gathers": True}, "in place": {}, "gathered": {"no_in_place": True}}


def child(batch: int, prompt: int, steps: int, quantize: str, fresh_gathers: bool, no_in_place: bool) -> dict:
    """Runs in its own process: the decode step's min and median ms."""
    import torch

    from gptkit.config import GPTConfig
    from gptkit.inference import SamplingConfig, runner
    from gptkit.inference.engine import Engine, Sequence
    from gptkit.model import GPT
    from gptkit.model.kv_cache import KVCache
    from gptkit.model.quantize import quantize as quantized
    from gptkit.model.quantize import use_onednn

    if fresh_gathers:
        KVCache.gather_buffers = lambda self, slots: None  # every layer allocates its own, as before
    if no_in_place:
        runner._consecutive = lambda blocks: False
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("gpt2")).eval()
    model = quantized(model, quantize) if quantize != "none" else use_onednn(model)
    engine = Engine(model, max_batch=batch)
    cfg = SamplingConfig(max_new_tokens=steps + 4, temperature=0, stop_at_eot=False)
    engine.add(Sequence(torch.randint(50257, (prompt,)).tolist(), cfg) for _ in range(batch))
    engine.step(), engine.step()  # the prefill, then a first decode step
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        engine.step()
        times.append(1000 * (time.perf_counter() - start))
    return {"min_ms": round(min(times), 1), "median_ms": round(statistics.median(times), 1)}


def measure(batch: int, prompt: int, variant: str, args) -> dict:
    options = VARIANTS[variant]
    code = (f"import json, sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            f"from decode_step import child; print(json.dumps(child({batch}, {prompt}, {args.steps}, {args.quantize!r}, "
            f"{options.get('fresh_gathers', False)}, {options.get('no_in_place', False)})))")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", nargs="+", default=["64x200", "16x400", "16x32", "1x900"],
                   help="BATCHxPROMPT: rows decoding together and their prompt tokens.")
    p.add_argument("--steps", type=int, default=20, help="Timed decode steps per process.")
    p.add_argument("--rounds", type=int, default=2, help="Times each variant runs (alternating).")
    p.add_argument("--quantize", choices=["none", "int8"], default="none")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", help="Append the rows here (JSON lines; written atomically, see report.emit).")
    args = p.parse_args()
    if args.out:
        results_so_far(args.out)
    rows = []
    for shape in args.shapes:
        batch, prompt = (int(x) for x in shape.split("x"))
        variants = ["in place", "gathered"] if batch == 1 else ["reused", "fresh"]
        results: dict[str, list[dict]] = {v: [] for v in variants}
        for _ in range(args.rounds):
            for variant in variants:
                results[variant].append(measure(batch, prompt, variant, args))
        for variant in variants:
            row = {"batch": batch, "prompt": prompt, "quantize": args.quantize, "threads": args.threads,
                   "variant": variant, "min_ms": min(r["min_ms"] for r in results[variant]),
                   "median_ms": statistics.median(r["median_ms"] for r in results[variant]),
                   "rounds": results[variant], "load_avg": round(os.getloadavg()[0], 2)}
            rows.append(row)
            emit(row, args.out)
    print("\n| rows x prompt tokens | cache reads | decode step, ms (median) | least | x the plain way |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        plain = next(r for r in rows if (r["batch"], r["prompt"]) == (row["batch"], row["prompt"])
                     and r["variant"] in ("fresh", "gathered"))
        print(f"| {row['batch']} x {row['prompt']} | {row['variant']} | {row['median_ms']:.1f} | {row['min_ms']:.1f} "
              f"| {plain['median_ms'] / row['median_ms']:.2f}x |")


if __name__ == "__main__":
    main()
