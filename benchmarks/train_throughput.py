"""Training throughput of the real Trainer: tokens/s, model FLOPs utilisation and peak memory.

    python benchmarks/train_throughput.py --preset gpt2 --dtype bf16 --compile --steps 40
    python benchmarks/train_throughput.py --preset shakespeare-char --device cpu --steps 30
    python benchmarks/train_throughput.py --preset gpt2 --device cpu --batch-size 4 --block-size 256 --steps 12 --warmup 4 --no-fused-loss
    torchrun --standalone --nproc_per_node 2 benchmarks/train_throughput.py --preset gpt2 --dtype bf16 --compile
    python benchmarks/train_throughput.py --preset gpt2 --dtype bf16 --compile --steps 30 --warmup 20 --profile prof/

Data: the bundled Shakespeare, tokenized with the GPT-2 tokenizer (or characters for char presets).
Timing: the median tokens/s of the steps after the first ``--warmup`` (compilation, allocator warm-up).
Under torchrun, tokens/s is the whole job's, MFU is per GPU and peak memory is rank 0's; rank 0 reports.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch
from report import emit

from gptkit.config import GPTConfig
from gptkit.model import flops_per_token
from gptkit.train import TrainConfig, Trainer, pretrain
from gptkit.train.plot import read_metrics

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense, from NVIDIA's data sheets


def peak_tflops() -> float | None:
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


@contextlib.contextmanager
def profiled_steps(directory: str, skip: int, steps: int = 5):
    """torch.profiler over ``steps`` training steps after the first ``skip`` (compilation): a Chrome
    trace (open it in https://ui.perfetto.dev) and the table of the ops that took the most time."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    sort = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"

    def write(prof) -> None:
        prof.export_chrome_trace(str(out / "trace.json"))
        table = prof.key_averages().table(sort_by=sort, row_limit=25)
        (out / "top_ops.txt").write_text(table + "\n")
        print(table)

    schedule = torch.profiler.schedule(wait=max(0, skip - 1), warmup=1, active=steps, repeat=1)
    with torch.profiler.profile(activities=activities, schedule=schedule, on_trace_ready=write) as prof:
        step = Trainer.train_step

        def train_step(self):  # the profiler's clock is the Trainer's step
            stats = step(self)
            prof.step()
            return stats

        Trainer.train_step = train_step
        try:
            yield
        finally:
            Trainer.train_step = step


def run(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:  # under torchrun, give --out: every rank must write the same run
        cfg = TrainConfig(preset=args.preset, data=args.data, tokenizer="char" if "char" in args.preset else "gpt2",
                          out=args.out or str(Path(tmp) / "run"), parallel=args.parallel, max_steps=args.steps, batch_size=args.batch_size,
                          block_size=args.block_size, device=args.device, dtype=args.dtype, compile=args.compile,
                          fused_loss=args.fused_loss, dropout=args.dropout, eval_every=0, save_every=0, sample_tokens=0, warmup_steps=5,
                          batch_ramp=0, block_ramp=0)  # every step at the shape measured
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        with profiled_steps(args.profile, args.warmup) if args.profile else contextlib.nullcontext():
            result = pretrain(cfg, progress=False)
        wall = time.perf_counter() - started
        records = read_metrics(Path(cfg.out) / "metrics.jsonl")
        model_cfg: GPTConfig = result.trainer.model.config
    tok_s = statistics.median(r["tokens_per_sec"] for r in records[args.warmup:])
    gpus = int(os.environ.get("WORLD_SIZE", "1"))
    window = args.block_size or model_cfg.block_size
    flops = flops_per_token(model_cfg, window) * tok_s / gpus
    peak = peak_tflops()
    return {
        "preset": args.preset, "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "processes": gpus, "parallel": args.parallel if gpus > 1 else None,
        "dtype": args.dtype, "compile": args.compile, "fused_loss": args.fused_loss, "batch_size": args.batch_size,
        "block_size": window, "steps": args.steps, "tokens_per_sec": round(tok_s),
        "achieved_tflops": round(flops / 1e12, 1), "mfu": round(flops / 1e12 / peak, 3) if peak else None,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None,
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),  # the process, on any device
        "final_loss": round(records[-1]["loss"], 4), "wall_s": round(wall, 1), "torch": torch.__version__,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="gpt2")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--compile", action="store_true")
    p.add_argument("--no-fused-loss", dest="fused_loss", action="store_false",
                   help="The whole (B, T, vocab) logits, then cross-entropy (the fused loss is the default).")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--block-size", type=int, default=None)
    p.add_argument("--dropout", type=float, default=None, help="Default: the preset's (0 to match a peer's setup).")
    p.add_argument("--data", help="Shards from `gptkit prepare` (default: prepare the bundled Shakespeare).")
    p.add_argument("--json", help="Append the result as one JSON line to this file.")
    p.add_argument("--profile", metavar="DIR", help="Profile 5 steps after the warm-up: DIR/trace.json and DIR/top_ops.txt.")
    p.add_argument("--out", help="Run directory (default: a temporary one); needed under torchrun.")
    p.add_argument("--parallel", default="ddp", choices=["ddp", "fsdp"], help="Under torchrun.")
    args = p.parse_args()
    result = run(args)
    if os.environ.get("RANK", "0") == "0":
        emit(result, args.json)


if __name__ == "__main__":
    main()
