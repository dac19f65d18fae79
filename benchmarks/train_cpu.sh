#!/usr/bin/env bash
# gptkit's trainer beside nanoGPT's on the CPU, in one run (the ratio is the claim, not the numbers):
# nanoGPT's shakespeare_char shape (6 layers x 384, 6 heads, context 256, 65 characters, no dropout,
# batch 12), through ../shared/peers/bench.py, and gptkit's `small` preset at that shape on the
# bundled Shakespeare, with the fused loss and without, alternating.
#   bash benchmarks/train_cpu.sh      # about 6 minutes on 2 cores
set -uo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PY:-.venv/bin/python}"; PEERS="${PEERS:-../shared/peers}"
R="${OUT:-benchmarks/results}/train_vs_nanogpt_cpu.jsonl"
"$PY" -m gptkit prepare --input shakespeare --tokenizer char --out /tmp/shk-char >/dev/null 2>&1
gptkit_line() {
  "$PY" benchmarks/train_throughput.py --preset small --data /tmp/shk-char --device cpu --batch-size 12 \
    --block-size 256 --dropout 0 --steps 12 --warmup 4 "$@" --json "$R"
}
for _ in 1 2; do
  "$PY" "$PEERS/bench.py" nanogpt-train-cpu | tee -a "$R"
  gptkit_line
  gptkit_line --no-fused-loss
done
