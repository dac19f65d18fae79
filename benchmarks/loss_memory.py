"""The output layer + L1, forward and backward, with and without fusing (issue 10): time and peak memory.

    python benchmarks/loss_memory.py --device cpu --rows 2048,8192 --json benchmarks/results/loss_cpu.jsonl
    python benchmarks/loss_memory.py --device cuda --dtype bf16 --rows 16384,32768,65536

GPT-2's shapes (n_embd 768, vocab 50,257); rows is batch x context (16 x 1024 = 16,384). "plain" makes
the whole (rows, vocab) logits and calls cross-entropy on them, as the trainer did before; "fused" is
gptkit.model.loss.linear_cross_entropy, which makes them a chunk at a time with the vocabulary padded
to a multiple of 64 (50,304), and "fused-unpadded" the same at 50,257. Each case runs in a
process of its own, so its peak resident memory (on the CPU) is its own; on CUDA the peak is
torch.cuda.max_memory_allocated. Time is the median of ``--repeat`` steps after one warm-up step.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
from report import emit

import gptkit.model.loss as loss_module
from gptkit.model.loss import linear_cross_entropy, lm_loss

N_EMBD, VOCAB = 768, 50257


def one_case(mode: str, rows: int, device: str, dtype: str, repeat: int) -> dict:
    if mode == "fused-unpadded":  # the vocabulary as it is: what the padding to 64 buys
        loss_module.PAD_VOCAB = 1
    torch.manual_seed(0)
    hidden = torch.randn(rows, N_EMBD, device=device, requires_grad=True)
    weight = (torch.randn(VOCAB, N_EMBD, device=device) * 0.02).requires_grad_()
    targets = torch.randint(0, VOCAB, (rows,), device=device)
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=dtype == "bf16")

    def step() -> float:
        start = time.perf_counter()
        with autocast:
            loss = (lm_loss((hidden @ weight.T)[None], targets[None]) if mode == "plain"
                    else linear_cross_entropy(hidden, weight, targets))
        loss.backward()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    step()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = statistics.median(step() for _ in range(repeat))
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"what": "output layer + loss", "mode": mode, "rows": rows, "device": torch.cuda.get_device_name()
            if device == "cuda" else "cpu", "dtype": dtype, "ms": round(seconds * 1000, 1),
            "peak_gib": round(peak / 2**30, 2), "peak_is": "cuda allocated" if device == "cuda" else "process RSS"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--rows", default="2048,8192", help="Comma-separated rows (batch x context) to measure.")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", help="Append each case as one JSON line to this file.")
    p.add_argument("--case", nargs=2, metavar=("MODE", "ROWS"), help=argparse.SUPPRESS)  # one case, in this process
    args = p.parse_args()
    if args.case:
        print(json.dumps(one_case(args.case[0], int(args.case[1]), args.device, args.dtype, args.repeat)))
        return
    for rows in (int(r) for r in args.rows.split(",")):
        for mode in ("plain", "fused-unpadded", "fused"):
            out = subprocess.run([sys.executable, __file__, "--device", args.device, "--dtype", args.dtype,
                                  "--repeat", str(args.repeat), "--case", mode, str(rows)],
                                 check=True, capture_output=True, text=True).stdout
            emit(json.loads(out.splitlines()[-1]), args.json)


if __name__ == "__main__":
    main()
