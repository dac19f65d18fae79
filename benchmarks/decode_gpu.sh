#!/usr/bin/env bash
# Decoding on a CUDA GPU, one command from the repository root:  bash benchmarks/decode_gpu.sh
# First the decode tests on CUDA (the captured decode steps equal the eager ones, greedy and seeded
# sampling), then gptkit beside transformers: GPT-2 124M bf16 at batch 1-32, gpt2-xl at batch 1, and
# time to first token for a 1,000-token prompt. Results under $OUT (default bench-out/).
set -uo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT="${OUT:-bench-out}"; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -m pytest -q -p no:cacheprovider tests/inference/test_generate.py tests/inference/test_engine.py \
  | tee "$OUT/decode_tests.txt"
python3 benchmarks/decode_throughput.py --device cuda --runs 124M:1,8,32 1558M:1 "$@" \
  --out "$OUT/decode_gpu.json" --plot "$OUT/decode_throughput_gpu.png" | tee "$OUT/decode_gpu.txt"
