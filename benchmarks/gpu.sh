#!/usr/bin/env bash
# The GPU checks behind docs/benchmarks.md: one script, results as JSON lines under $OUT (or ./bench-out).
# Run from the repository root on a CUDA machine:  bash benchmarks/gpu.sh
set -uo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT="${OUT:-bench-out}"; mkdir -p "$OUT"
T="$OUT/train.jsonl"; G="$OUT/generate.jsonl"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$OUT/gpu.txt"
python3 -m gptkit prepare --input shakespeare --tokenizer gpt2 --out /tmp/shk-gpt2 >/dev/null 2>&1
for dtype in fp32 bf16 fp16; do
  python3 benchmarks/train_throughput.py --preset gpt2 --data /tmp/shk-gpt2 --dtype $dtype --steps 30 --batch-size 16 --json "$T"
done
python3 benchmarks/generate_throughput.py --preset gpt2 --dtype bf16 --batch-size 1 --json "$G"
python3 benchmarks/generate_throughput.py --preset gpt2 --dtype bf16 --batch-size 16 --json "$G"
python3 benchmarks/generate_throughput.py --preset gpt2 --dtype fp32 --batch-size 1 --json "$G"
# The default job (bundled Shakespeare, shakespeare-char) end to end on the GPU.
( time python3 -m gptkit pretrain --out /tmp/demo --quiet ) > "$OUT/demo.txt" 2>&1
tail -n 30 "$OUT/demo.txt"
cp /tmp/demo/loss.png "$OUT/demo_loss_gpu.png" 2>/dev/null
python3 benchmarks/train_throughput.py --preset gpt2 --data /tmp/shk-gpt2 --dtype bf16 --compile --steps 50 --warmup 20 --batch-size 16 --json "$T"
python3 benchmarks/train_throughput.py --preset gpt2-medium --data /tmp/shk-gpt2 --dtype bf16 --compile --steps 40 --warmup 20 --batch-size 16 --json "$T"
