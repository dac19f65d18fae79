"""Decoding throughput of gptkit beside transformers, measured in one run on the same weights.

    python benchmarks/decode_throughput.py                    # CPU: GPT-2 124M, batch 1, 4, 16
    python benchmarks/decode_throughput.py --ctranslate2 --runs 124M:1,16   # and CTranslate2, fp32 and int8
    bash benchmarks/decode_gpu.sh                             # CUDA: 124M batch 1-32, gpt2-xl batch 1

CTranslate2, the engine people pick for fast CPU inference of GPT-2-class models, is a benchmark-only
dependency (`pip install ctranslate2`, or gptkit's `bench` extra); with ``--ctranslate2`` its
converter reads the same saved files and it decodes the same prompts, greedy, fp32 and int8, and the
script prints the table of docs/benchmarks.md's CTranslate2 section.

Two measures of how far a precision strays from fp32, both against transformers fp32 (the first
system): greedy agreement (the share of the decoded tokens that are the same, position by position,
over the same ``--agreement-rows`` prompts at every batch size, decoded that many rows a call; one
flipped near-tie changes the rest of a row, so it is coarse) and next-token agreement (the most
likely next token at every position of ``--agreement-windows`` random 128-token windows, teacher-forced:
every position counts once, whatever happened before it).

The weights are random GPT-2 weights that transformers builds (seeded, SDPA attention, no dropout,
the recipe of the usual transformers decode benchmark); they are saved once and gptkit loads the
same files, so both decode the same model. Greedy decoding of random 32-token prompts; a figure is
new tokens / s over whole generate calls (prefill included), after a warm-up, averaged over two
calls, as the peer script times transformers. Rounds alternate the systems, so background load hits
them alike; the table gives each system's median round. Time to first token is one prefill of a
``--ttft-prompt``-token prompt plus the first sampled token.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from gptkit.checkpoint import load_model
from gptkit.device import resolve_device
from gptkit.inference import SamplingConfig, generate_ids, generate_tokens
from gptkit.inference.precision import describe, pick_precision
from gptkit.io import save_figure, write_text
from gptkit.model.quantize import quantize, use_onednn
from gptkit.tokenizer import Tokenizer

SHAPES = {"124M": (12, 768, 12), "355M": (24, 1024, 16), "774M": (36, 1280, 20), "1558M": (48, 1600, 25)}


def hf_model(size: str):
    """transformers' GPT-2 of this size with seeded random weights, fp32 on the CPU."""
    from transformers import GPT2Config, GPT2LMHeadModel

    n_layer, n_embd, n_head = SHAPES[size]
    cfg = GPT2Config(n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_positions=1024, vocab_size=50257,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(0)
    try:
        return GPT2LMHeadModel(cfg, attn_implementation="sdpa").eval()
    except TypeError:  # transformers 5 takes no attn_implementation here (and picks SDPA itself)
        return GPT2LMHeadModel(cfg).eval()


def seconds_per_call(fn, cuda: bool, calls: int = 2) -> float:
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / calls


class Transformers:
    def __init__(self, model, static: bool = False):
        self.model, self.static = model, static

    def generate(self, ids: torch.Tensor, new_tokens: int) -> list[list[int]]:
        kw = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
        if self.static:
            kw["cache_implementation"] = "static"
        with torch.no_grad():
            return self.model.generate(ids, **kw)[:, ids.shape[1]:].tolist()

    def next_tokens(self, windows: torch.Tensor) -> torch.Tensor:
        """The most likely next token at every position of ``windows`` (B, T), teacher-forced."""
        with torch.no_grad():
            return self.model(windows).logits.argmax(-1)


class Gptkit:
    def __init__(self, model):
        self.model = model

    def generate(self, ids: torch.Tensor, new_tokens: int) -> list[list[int]]:
        cfg = SamplingConfig(max_new_tokens=new_tokens, temperature=0, stop_at_eot=False)
        return generate_ids(self.model, ids.tolist(), cfg, eot_id=None)

    def first_token(self, ids: torch.Tensor) -> None:
        next(generate_tokens(self.model, ids.tolist(), SamplingConfig(max_new_tokens=1, temperature=0), None)).tolist()

    def next_tokens(self, windows: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.model(windows).argmax(-1)


class CTranslate2:
    """CTranslate2's Generator on the model transformers saved (converted once per compute type), in a
    process of its own. In this one, once CTranslate2 had generated, torch's OpenMP threads slept
    between parallel regions, so every op of gptkit and transformers waited for a wake-up: fbgemm's
    batch-1 matmul took 3.3x as long, a LayerNorm 6x, gptkit's decoding half its speed."""

    def __init__(self, saved: str, compute_type: str):
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        context.Process(target=ctranslate2_worker, args=(child, saved, compute_type, torch.get_num_threads()),
                        daemon=True).start()
        self.call("ready")

    def call(self, *request):
        self.conn.send(request)
        ok, value = self.conn.recv()
        if not ok:
            raise RuntimeError(f"CTranslate2's process: {value}")
        return value

    def generate(self, ids: torch.Tensor, new_tokens: int) -> list[list[int]]:
        return self.call("generate", ids.tolist(), new_tokens)

    def next_tokens(self, windows: torch.Tensor) -> torch.Tensor:
        return torch.tensor(self.call("next_tokens", windows.tolist()))


def ctranslate2_worker(conn, saved: str, compute_type: str, threads: int) -> None:
    """CTranslate2's side of the pipe: converts the saved model, then answers requests until the pipe closes."""
    import ctranslate2
    import numpy as np
    from ctranslate2.converters import TransformersConverter
    from transformers import AutoTokenizer

    out = Path(saved) / f"ct2-{compute_type}"
    TransformersConverter(saved).convert(str(out), quantization=compute_type)
    generator = ctranslate2.Generator(str(out), device="cpu", compute_type=compute_type, intra_threads=threads)
    tokens = AutoTokenizer.from_pretrained(saved).convert_ids_to_tokens

    def generate(ids: list[list[int]], new_tokens: int) -> list[list[int]]:
        results = generator.generate_batch([tokens(row) for row in ids], max_length=new_tokens, min_length=new_tokens,
                                           sampling_topk=1, include_prompt_in_result=False)
        return [r.sequences_ids[0] for r in results]

    def next_tokens(windows: list[list[int]]) -> list[list[int]]:
        return np.asarray(generator.forward_batch(windows)).argmax(-1).tolist()

    handlers = {"ready": lambda: True, "generate": generate, "next_tokens": next_tokens}
    while True:
        try:
            name, *args = conn.recv()
        except EOFError:
            return
        try:
            conn.send((True, handlers[name](*args)))
        except Exception as e:  # reported to the parent, which raises it
            conn.send((False, repr(e)))


def systems(size: str, device: torch.device, precisions: list[str], hf_static: bool,
            ctranslate2: bool) -> dict[str, object]:
    """name -> system: transformers, gptkit in each of ``precisions`` (fp32, bf16, fp16, int8, int4),
    and with ``ctranslate2`` CTranslate2 in fp32 and int8, all loaded from the files transformers saved."""
    hf_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32  # as the peer script
    hf = hf_model(size)
    with tempfile.TemporaryDirectory() as saved:
        hf.save_pretrained(saved)
        found = {f"transformers {describe(hf_dtype, None)}": Transformers(hf.to(device, hf_dtype))}
        if ctranslate2:
            Tokenizer.gpt2().save(saved)  # the converter reads the vocabulary beside the weights
            found |= {f"CTranslate2 {kind}": CTranslate2(saved, kind) for kind in ("float32", "int8")}
        for name in precisions:
            quantized = name in ("int8", "int4")
            dtype, kind = pick_precision(device, "fp32" if quantized else name, name if quantized else "none")
            default = " (default)" if (dtype, kind) == pick_precision(device) else ""
            model = load_model(saved, device, dtype)  # transformers saved no tokenizer
            # as gptkit generate runs it (gptkit.cli.generate.load_for_inference): fp32 on oneDNN's matmul
            found[f"gptkit {describe(dtype, kind)}{default}"] = Gptkit(quantize(model, kind) if kind else use_onednn(model))
    if hf_static:
        found[f"transformers {describe(hf_dtype, None)}, static cache"] = Transformers(hf, static=True)
    return found


def agreement(a: list[list[int]], b: list[list[int]]) -> float:
    pairs = [(x, y) for ra, rb in zip(a, b) for x, y in zip(ra, rb)]
    return sum(x == y for x, y in pairs) / len(pairs)


def measure(size: str, batches: list[int], args, device: torch.device) -> tuple[list[dict], list[dict]]:
    cuda = device.type == "cuda"
    found = systems(size, device, args.precisions.split(","), args.hf_static, args.ctranslate2)
    reference = next(iter(found))
    torch.manual_seed(12345)
    windows = torch.randint(50257, (args.agreement_windows, 128), device=device)
    expected = found[reference].next_tokens(windows)
    agreement_ids = torch.randint(50257, (args.agreement_rows, args.prompt), device=device)
    next_token = {name: round((system.next_tokens(windows) == expected).float().mean().item(), 3)
                  for name, system in found.items()}
    rows = []
    for batch in batches:
        torch.manual_seed(batch)
        ids = torch.randint(50257, (batch, args.prompt), device=device)
        rates: dict[str, list[float]] = {name: [] for name in found}
        tokens = {}
        for name, system in list(found.items()):  # warm-up, as the peer script: a short call, then full ones
            try:
                system.generate(ids, 8)
                tokens[name] = [row for chunk in agreement_ids.split(batch) for row in system.generate(chunk, args.new_tokens)]
            except Exception as e:  # a peer that breaks (a compile on a new GPU) leaves the others measured
                print(json.dumps({"size": size, "batch": batch, "system": name, "error": repr(e)[:500]}), flush=True)
                del found[name], rates[name]
        for _ in range(args.rounds):
            for name, system in found.items():
                seconds = seconds_per_call(lambda: system.generate(ids, args.new_tokens), cuda)
                rates[name].append(batch * args.new_tokens / seconds)
        for name in found:
            rows.append({"size": size, "batch": batch, "system": name, "tok_s": round(statistics.median(rates[name]), 1),
                         "rounds": [round(r, 1) for r in rates[name]],
                         "greedy_agreement_with_transformers": round(agreement(tokens[name], tokens[reference]), 3),
                         "next_token_agreement_with_transformers": next_token[name]})
            print(json.dumps(rows[-1]), flush=True)
    ttft = []
    ids = torch.randint(50257, (1, args.ttft_prompt), device=device)
    for name, system in found.items():
        first = (lambda: system.first_token(ids)) if isinstance(system, Gptkit) else (lambda: system.generate(ids, 1))
        first()
        ttft.append({"size": size, "system": name, "prompt": args.ttft_prompt,
                     "ms": round(1000 * min(seconds_per_call(first, cuda, 1) for _ in range(3)), 1)})
        print(json.dumps(ttft[-1]), flush=True)
    return rows, ttft


def table(rows: list[dict], ttft: list[dict]) -> str:
    """Markdown: each system's tok/s, its ratio to transformers in the same run, time to first token."""
    first = {(t["size"], t["system"]): t["ms"] for t in ttft}
    lines = ["| model | batch | system | new tok/s | x transformers | first token (ms) |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        base = next(x["tok_s"] for x in rows if x["size"] == r["size"] and x["batch"] == r["batch"]
                    and x["system"].startswith("transformers"))
        ms = first.get((r["size"], r["system"]), "") if r["batch"] == 1 else ""
        lines.append(f"| GPT-2 {r['size']} | {r['batch']} | {r['system']} | {r['tok_s']:,.1f} | {r['tok_s'] / base:.2f}x | {ms} |")
    return "\n".join(lines)


def peer(name: str) -> str:
    """The CTranslate2 system a system is compared with: the same precision (int4 against int8)."""
    unquantized = name.startswith("transformers") or (name.startswith("gptkit") and " with " not in name)
    return "CTranslate2 float32" if unquantized or name == "CTranslate2 float32" else "CTranslate2 int8"


def ctranslate2_table(rows: list[dict], ttft: list[dict]) -> str:
    """Markdown of docs/benchmarks.md's CTranslate2 section: tok/s (median round, and the rounds' range),
    the ratio to CTranslate2 in the same precision, both agreements with fp32, time to first token."""
    first = {(t["size"], t["system"]): t["ms"] for t in ttft}
    lines = ["| batch | system (CPU) | new tok/s | rounds | x CTranslate2, same precision | greedy agreement with fp32 "
             "| next-token agreement with fp32 | first token (ms) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        base = next(x["tok_s"] for x in rows if x["size"] == r["size"] and x["batch"] == r["batch"] and x["system"] == peer(r["system"]))
        ms = first.get((r["size"], r["system"]), "") if r["batch"] == 1 else ""
        lines.append(f"| {r['batch']} | {r['system']} | {r['tok_s']:,.1f} | {min(r['rounds']):,.1f}-{max(r['rounds']):,.1f} "
                     f"| {r['tok_s'] / base:.2f}x | {r['greedy_agreement_with_transformers']:.1%} "
                     f"| {r['next_token_agreement_with_transformers']:.1%} | {ms} |")
    return "\n".join(lines)


def plot(rows: list[dict], size: str, title: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for name in dict.fromkeys(r["system"] for r in rows):
        points = [(r["batch"], r["tok_s"]) for r in rows if r["system"] == name and r["size"] == size]
        ax.plot(*zip(*points), marker="o", linestyle="-" if name.startswith("gptkit") else "--", label=name)  # peers dashed
    ax.set_xscale("log", base=2)
    batches = sorted({r["batch"] for r in rows if r["size"] == size})
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("new tokens / s")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
             if line.startswith("model name")] if cpuinfo.is_file() else []
    return names[0] if names else platform.machine()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--runs", nargs="+", default=None,
                   help="SIZE:BATCHES, e.g. 124M:1,4,16 1558M:1 (default: 124M:1,4,16 on the CPU; 124M:1,8,32 1558M:1 on CUDA)")
    p.add_argument("--prompt", type=int, default=32, help="Prompt tokens.")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--ttft-prompt", type=int, default=1000)
    p.add_argument("--precisions", help="gptkit's, comma-separated: fp32, bf16, fp16, int8, int4 (default: fp32,int8,int4 "
                                         "on the CPU, bf16,fp32 on CUDA)")
    p.add_argument("--agreement-rows", type=int, default=16,
                   help="Prompts whose greedy tokens are compared with fp32's, decoded at each batch size.")
    p.add_argument("--agreement-windows", type=int, default=8,
                   help="Random 128-token windows for the next-token agreement with fp32 (teacher-forced).")
    p.add_argument("--threads", type=int, help="CPU threads for both systems (default: torch's choice).")
    p.add_argument("--hf-static", action="store_true", help="Also transformers' static cache (compiled on CUDA).")
    p.add_argument("--ctranslate2", action="store_true", help="Also CTranslate2, fp32 and int8 (CPU; pip install ctranslate2).")
    p.add_argument("--out", help="Write the results as JSON here.")
    p.add_argument("--plot", help="Plot tok/s against batch size (the first run's model) here.")
    args = p.parse_args()

    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.precisions = args.precisions or ("bf16,fp32" if device.type == "cuda" else "fp32,int8,int4")
    runs = args.runs or (["124M:1,8,32", "1558M:1"] if device.type == "cuda" else ["124M:1,4,16"])
    cpu = f"{os.cpu_count()} CPU cores ({cpu_name()})"
    where = torch.cuda.get_device_name() if device.type == "cuda" else cpu
    load_before = os.getloadavg()
    rows, ttft = [], []
    for run in runs:
        size, batches = run.split(":")
        got = measure(size, [int(b) for b in batches.split(",")], args, device)
        rows += got[0]
        ttft += got[1]
    import transformers

    result = {"device": where, "torch": torch.__version__, "transformers": transformers.__version__,
              "threads": torch.get_num_threads(), "load_avg_before": load_before, "load_avg_after": os.getloadavg(),
              "prompt_tokens": args.prompt, "new_tokens": args.new_tokens, "rounds": args.rounds,
              "default": describe(*pick_precision(device)), "rows": rows, "time_to_first_token": ttft}
    print(table(rows, ttft))
    if args.ctranslate2:
        print(ctranslate2_table(rows, ttft))
    print(f"load average before {load_before[0]:.2f}, after {result['load_avg_after'][0]:.2f}")
    if args.out:
        write_text(args.out, json.dumps(result, indent=2) + "\n")
    if args.plot:
        size = runs[0].split(":")[0]
        plot(rows, size, f"GPT-2 {size} greedy decoding on {where}\n{args.prompt}-token prompts, {args.new_tokens} new tokens", args.plot)


if __name__ == "__main__":
    main()
