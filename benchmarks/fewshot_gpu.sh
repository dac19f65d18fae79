#!/usr/bin/env bash
# Few-shot curves need a context that holds several examples: pretrain the character model with a
# 1,024-character context (on a GPU: about a minute), then evaluate the bundled choice and last-word
# tasks at K = 0, 1, 2, 4, 8. Results (JSON + plot) under $OUT.   Usage: bash benchmarks/fewshot_gpu.sh
set -euo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_DATASETS_OFFLINE=1
OUT="${OUT:-bench-out}"; mkdir -p "$OUT"
printf 'model:\n  block_size: 1024\n' > "$OUT/long.yaml"  # the model's context, not only the windows
python3 -m gptkit pretrain --config "$OUT/long.yaml" --out /tmp/long --batch-size 32 --max-steps 1500 --batch-ramp 0 --block-ramp 0 --optimizer adamw --sample-tokens 0 --quiet \
  2>&1 | tail -n 3 | tee "$OUT/pretrain_long.txt"
python3 -m gptkit eval task --model /tmp/long --task shakespeare-nextline --task shakespeare-cloze \
  --task shakespeare-lastword --shots 0,1,2,4,8 --batch-size 32 --out "$OUT/fewshot.json" 2>&1 | grep -v "batch/s"
