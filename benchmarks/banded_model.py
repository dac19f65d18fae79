"""A GPT-3-style model (dense and banded layers alternating) against the same model all dense, at long
contexts: training tokens/s, and the KV cache one decoded sequence holds.

    python benchmarks/banded_model.py                         # writes benchmarks/results/banded_model_cpu.json
    python benchmarks/banded_model.py --lengths 1024 --rounds 2 --out /tmp/m.json

The model is the ``banded-4k`` preset's shape (4 layers, 128 wide, 4 heads, window 256) at each
``--lengths`` context; "dense" is the same with every layer dense. Training: forward, backward and an
AdamW step over one batch of ``--batch-size`` random windows of the context, rounds alternating the
two models after a warm-up round; tokens/s is the median round's (min and max beside it). Decoding:
the bytes the one decode engine's cache holds for one sequence filling the context (paged blocks of
the dense layers, rings of the banded ones), and whether greedy tokens with the cache equal
computing every window from scratch.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from gptkit import GPT, GPTConfig
from gptkit.inference import SamplingConfig, generate_ids
from gptkit.inference.engine import BLOCK_LEN, Engine, Sequence
from gptkit.io import write_text

KINDS = ("alternating", "dense")


def model_of(kind: str, T: int) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig.preset("banded-4k").replace(block_size=T, attention=kind))


def train_step(model: GPT, optimizer: torch.optim.Optimizer, ids: torch.Tensor) -> None:
    loss = model(ids[:, :-1], targets=ids[:, 1:])
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def training(T: int, args) -> dict:
    models = {kind: model_of(kind, T) for kind in KINDS}
    optimizers = {kind: torch.optim.AdamW(m.parameters(), lr=1e-4) for kind, m in models.items()}
    ids = torch.randint(0, 96, (args.batch_size, T + 1), generator=torch.Generator().manual_seed(T))
    seconds = {kind: [] for kind in KINDS}
    for r in range(args.rounds + 1):  # round 0 warms up
        for kind in KINDS if r % 2 else KINDS[::-1]:
            start = time.perf_counter()
            train_step(models[kind], optimizers[kind], ids)
            if r:
                seconds[kind].append(time.perf_counter() - start)
    tokens = args.batch_size * T
    out = {kind: {"tokens_per_sec": round(tokens / statistics.median(s)),
                  "range": [round(tokens / max(s)), round(tokens / min(s))]} for kind, s in seconds.items()}
    out["speedup"] = round(out["alternating"]["tokens_per_sec"] / out["dense"]["tokens_per_sec"], 2)
    return out


@torch.inference_mode()
def decoding(T: int) -> dict:
    held = {}
    for kind in KINDS:
        model = model_of(kind, T).eval()
        engine = Engine(model, max_batch=1)
        seq = Sequence(torch.randint(0, 96, (T - 1,)).tolist(), SamplingConfig(max_new_tokens=2, temperature=0))
        engine.add([seq])
        engine.step()  # the whole context prefilled
        cache = engine.cache
        held[kind] = len(seq.blocks) * BLOCK_LEN * cache.bytes_per_token() + cache.kb.nbytes + cache.vb.nbytes
    model = model_of("alternating", T).eval()
    prompt = [torch.randint(0, 96, (T // 2,)).tolist()]
    cfg = SamplingConfig(max_new_tokens=16, temperature=0, stop_at_eot=False)
    same = generate_ids(model, prompt, cfg, None) == generate_ids(model, prompt, cfg, None, use_cache=False)
    return {"kv_cache_bytes": held, "ratio": round(held["alternating"] / held["dense"], 3), "greedy_equal": same}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/banded_model_cpu.json")
    args = p.parse_args()
    results = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "model": "banded-4k shape: 4 layers x 128, 4 heads, window 256",
               "batch_size": args.batch_size, "rounds": args.rounds, "contexts": {}}
    for T in args.lengths:
        results["contexts"][T] = {"training": training(T, args), "decoding": decoding(T)}
        train, decode = results["contexts"][T]["training"], results["contexts"][T]["decoding"]
        print(f"T={T}: training alternating {train['alternating']['tokens_per_sec']} vs dense "
              f"{train['dense']['tokens_per_sec']} tok/s ({train['speedup']}x); KV cache {decode['ratio']}x of dense, "
              f"greedy equal: {decode['greedy_equal']}", flush=True)
    write_text(args.out, json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
