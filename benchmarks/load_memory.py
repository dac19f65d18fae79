"""Peak RAM while loading a Hugging Face checkpoint: gptkit streams tensor by tensor onto a model built
on the meta device, so the weights should be in memory about once, not twice.

    python benchmarks/load_memory.py --preset gpt2-xl --json benchmarks/results/load_memory_cpu.jsonl

Writes a randomly initialised checkpoint of the preset in the Hugging Face layout (safetensors; 6.2 GB
for gpt2-xl) to a temporary directory, then loads it in fresh processes and reads each one's peak
resident memory (VmHWM) above what the process held after its imports, after every weight page has
been read once (a loader that memory-maps the file defers the cost until the weights are used).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from report import emit

from gptkit import GPT, GPTConfig
from gptkit.convert import export_hf

CHILD = """
import sys, torch
{imports}
def hwm():  # peak resident memory of this process image (VmHWM; unlike ru_maxrss, not inherited at fork)
    return int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) * 1024
base = hwm()
model = {load}
for p in model.parameters():  # touch every page: lazily mapped weights count only once read
    p.detach().reshape(-1)[::512].float().sum()
print(hwm() - base, sum(p.numel() * p.element_size() for p in model.parameters()))
"""

LOADERS = {
    "gptkit fp32": ("from gptkit.checkpoint import load_model", "load_model(sys.argv[1])"),
    "gptkit bf16": ("from gptkit.checkpoint import load_model", "load_model(sys.argv[1], dtype=torch.bfloat16)"),
    "transformers fp32": ("from transformers import GPT2LMHeadModel", "GPT2LMHeadModel.from_pretrained(sys.argv[1])"),
}


def measure(imports: str, load: str, directory: Path) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", CHILD.format(imports=imports, load=load), str(directory)],
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[-2]), int(out[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="gpt2-xl")
    p.add_argument("--json")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        model = GPT(GPTConfig.preset(args.preset))
        export_hf(model, None, tmp)
        del model
        file_bytes = (Path(tmp) / "model.safetensors").stat().st_size
        for name, (imports, load) in LOADERS.items():
            peak, weights = measure(imports, load, Path(tmp))
            emit({"preset": args.preset, "loader": name, "checkpoint_gb": round(file_bytes / 1e9, 2),
                  "weights_gb": round(weights / 1e9, 2), "peak_rss_gb": round(peak / 1e9, 2),
                  "peak_over_weights": round(peak / weights, 2), "torch": torch.__version__}, args.json)


if __name__ == "__main__":
    main()
