#!/usr/bin/env bash
# Issue 26's GPU measurements, sized for a short lease: two parts of about 6 minutes each on one H100,
# each writing JSON lines under $OUT as it goes (a part cut short keeps what it finished). From the
# repository root on a CUDA machine, with the peers copied into the checkout (the device tool sends
# only the checkout: cp -r ../shared/peers .peers):
#   bash benchmarks/gpu_session.sh A   # the GPU-only tests; training 124M vs nanoGPT; decoding 124M and 1.5B vs transformers
#   bash benchmarks/gpu_session.sh B   # the default job with and without CUDA graphs; serving
# train_gpu.sh and decode_gpu.sh hold the longer versions (profiles, transformers' training, more batches).
# A machine without gptkit's dependencies needs them first (pip install -e .; for serving, fastapi
# 0.165 imports opentelemetry-api, which the H100 image of issue 26's run lacked: part B's serving
# line stopped there).
set -uo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT="${OUT:-bench-out}"; mkdir -p "$OUT"
PEERS="${PEERS:-.peers}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
lap() { echo "== $(date +%T) $*"; }

if [ "${1:-A}" = A ]; then
  lap tests
  timeout 120 python3 -m pytest -q -rs -p no:cacheprovider tests/inference/test_engine.py tests/inference/test_generate.py \
    tests/model/test_banded.py -k "cuda or graphed" 2>&1 | tail -n 15
  lap prepare
  python3 -m gptkit prepare --input shakespeare --tokenizer gpt2 --out /tmp/shk-gpt2 >/dev/null 2>&1
  for b in 16 32 64; do
    lap "gptkit train batch $b"
    timeout 120 python3 benchmarks/train_throughput.py --preset gpt2 --data /tmp/shk-gpt2 --dtype bf16 --compile \
      --steps 30 --warmup 10 --batch-size $b --json "$OUT/train.jsonl" | tail -n 2
  done
  lap "nanoGPT train"
  timeout 150 python3 "$PEERS/bench.py" nanogpt-train --batch 16,32,64 --steps 30 --warmup 10 | grep "^{" | tee -a "$OUT/train.jsonl"
  lap "decode 124M"
  timeout 240 python3 benchmarks/decode_throughput.py --device cuda --runs 124M:1,32 --precisions bf16 --hf-static \
    --rounds 2 --out "$OUT/decode_124M.json" 2>&1 | grep -v Warning | tail -n 20
  lap "decode 1558M"
  timeout 200 python3 benchmarks/decode_throughput.py --device cuda --runs 1558M:1 --precisions bf16 --hf-static \
    --rounds 2 --out "$OUT/decode_1558M.json" 2>&1 | grep -v Warning | tail -n 8
else
  lap "default job, eager"
  start=$EPOCHREALTIME
  timeout 120 python3 -m gptkit pretrain --out /tmp/demo-eager --quiet --sample-tokens 0 | tail -n 2
  echo "{\"run\": \"eager\", \"wall_s\": $(awk "BEGIN{print $EPOCHREALTIME - $start}")}" | tee -a "$OUT/default_job.jsonl"
  cp /tmp/demo-eager/metrics.jsonl "$OUT/default_job_eager.jsonl"
  lap "default job, CUDA graphs"
  start=$EPOCHREALTIME
  timeout 150 python3 -m gptkit pretrain --out /tmp/demo-graphs --quiet --sample-tokens 0 --compile \
    --compile-mode reduce-overhead | tail -n 2
  echo "{\"run\": \"graphs\", \"wall_s\": $(awk "BEGIN{print $EPOCHREALTIME - $start}")}" | tee -a "$OUT/default_job.jsonl"
  cp /tmp/demo-graphs/metrics.jsonl "$OUT/default_job_graphs.jsonl"
  lap serve
  timeout 120 python3 benchmarks/serve_load.py --streams 1,8,64 --malformed 100 --time-limit 110 \
    --out "$OUT/serve_load.json" 2>&1 | tail -n 15
fi
lap done
