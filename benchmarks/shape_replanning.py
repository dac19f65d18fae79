"""Why uncached bf16 decoding is slow on the GPU: the same generation run three times in one process.

If the first run is much slower than the next two, the cost is per new sequence length (kernel
planning/compilation), not the arithmetic. Also times each SDPA backend on its own.

    python benchmarks/shape_replanning.py
"""

from __future__ import annotations

import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from gptkit import GPT, GPTConfig
from gptkit.inference import SamplingConfig, generate_ids


def tokens_per_sec(model, prompts, cfg) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    generate_ids(model, prompts, cfg, 0, use_cache=False)
    torch.cuda.synchronize()
    return cfg.max_new_tokens / (time.perf_counter() - start)


def main() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("gpt2")).cuda().to(torch.bfloat16).eval()
    prompts = torch.randint(0, 50257, (1, 32)).tolist()
    cfg = SamplingConfig(max_new_tokens=128, temperature=0, stop_at_eot=False)
    print("default backends, three runs:", [round(tokens_per_sec(model, prompts, cfg), 1) for _ in range(3)])
    for i, backend in enumerate((SDPBackend.MATH, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION)):
        fresh = torch.randint(0, 50257, (1, 200 * (i + 1))).tolist()  # lengths no earlier run has seen
        try:
            with sdpa_kernel(backend):
                print(backend.name, "first, second run:",
                      [round(tokens_per_sec(model, fresh, cfg), 1) for _ in range(2)])
        except RuntimeError as e:
            print(backend.name, "unavailable:", str(e).splitlines()[0])

if __name__ == "__main__":
    main()
