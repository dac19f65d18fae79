#!/usr/bin/env bash
# Training on GPUs, gptkit beside nanoGPT and transformers, in one device run (issue 10). From the
# repository root on a CUDA machine:  bash benchmarks/train_gpu.sh [speed|more|jobs]   (default: all three)
# Writes benchmarks/results/train_batch_<gpu>.jsonl (JSON lines: tokens/s, MFU, peak memory at batch
# 16/32/64 with the fused loss and at 16/64 without, a profile, the loss alone, the default job's wall time,
# torchrun lines on 1 GPU and on 2 when there are 2) and its plot.
# About 13 minutes on one H100 (most of it compiling); each part alone takes under 6.
# The peers are read from $PEERS (default ../shared/peers). The device tool does not send ../shared:
# copy it into an ignored folder of the checkout first and carry it, e.g.
#   cp -r ../shared/peers .peers && echo .peers >> .git/info/exclude
#   run(command="PEERS=.peers bash benchmarks/train_gpu.sh speed", carry=[".peers"])
set -uo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT="${OUT:-benchmarks/results}"; mkdir -p "$OUT" docs/img
PEERS="${PEERS:-../shared/peers}"
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1 | grep -oiE 'h100|h200|a100|l4|l40s' | head -n1 | tr A-Z a-z)
R="$OUT/train_batch_${GPU:-gpu}.jsonl"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch; print('torch', torch.__version__)"
python3 -m gptkit prepare --input shakespeare --tokenizer gpt2 --out /tmp/shk-gpt2 >/dev/null 2>&1
PART="${1:-all}"
part() { [ "$PART" = all ] || [ "$PART" = "$1" ]; }

# One GPU, GPT-2 124M, T = 1024, bf16 + compile: gptkit's full training step, then the peers' (the
# peers are run, never imported: ../shared/peers is a measuring stick outside the repository).
if part speed; then
for b in 16 32 64; do
  python3 benchmarks/train_throughput.py --preset gpt2 --data /tmp/shk-gpt2 --dtype bf16 --compile \
    --steps 60 --warmup 20 --batch-size $b --json "$R"
done
python3 "$PEERS/bench.py" nanogpt-train --batch 16,32,64 | grep "^{" | tee -a "$R"
python3 "$PEERS/bench.py" hf-train --batch 16,32,64 | grep "^{" | tee -a "$R"
fi

if part more; then
for b in 16 64; do  # the loss made from the whole logits, as before the fused loss: keep what pays
  python3 benchmarks/train_throughput.py --preset gpt2 --data /tmp/shk-gpt2 --dtype bf16 --compile \
    --steps 60 --warmup 20 --batch-size $b --no-fused-loss --json "$R"
done
# Where a step's time goes (torch.profiler, 5 steps after compiling): the table is kept, the trace
# (/tmp/profile-gpt2/trace.json, for https://ui.perfetto.dev) is too big for the repository.
python3 benchmarks/train_throughput.py --preset gpt2 --data /tmp/shk-gpt2 --dtype bf16 --compile \
  --steps 30 --warmup 20 --batch-size 16 --profile /tmp/profile-gpt2 >/dev/null
cp /tmp/profile-gpt2/top_ops.txt "$OUT/train_profile_${GPU:-gpu}.txt"
python3 benchmarks/loss_memory.py --device cuda --dtype bf16 --rows 16384,65536 --json "$R"
fi

# The default job (bundled Shakespeare, shakespeare-char, 1,500 steps) end to end: as it is, and
# compiled with CUDA graphs (the step replayed as graphs: a small model is launch-bound). Each run's
# metrics.jsonl is kept for the loss against wall-clock plot.
default_job() {  # name, extra flags
  local name=$1; shift
  local start; start=$(date +%s.%N)
  python3 -m gptkit pretrain --out "/tmp/demo-$name" --quiet --sample-tokens 0 "$@" | tail -n 3
  cp "/tmp/demo-$name/metrics.jsonl" "$OUT/default_job_${name}_${GPU:-gpu}.jsonl"
  python3 - "$R" "$start" "$(date +%s.%N)" "$name" "$*" "/tmp/demo-$name" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[6] + "/metrics.jsonl")]
line = {"what": "default job", "run": sys.argv[4], "flags": sys.argv[5],
        "wall_s": round(float(sys.argv[3]) - float(sys.argv[2]), 1), "val_loss": rows[-1].get("val_loss")}
print(json.dumps(line)); open(sys.argv[1], "a").write(json.dumps(line) + "\n")
PY
}
if part jobs; then
default_job eager
default_job graphs --compile --compile-mode reduce-overhead

# torchrun: FSDP2 on one GPU (nccl, sharded checkpoints: the cost of the machinery), then DDP and
# FSDP2 on two GPUs when there are two; the same global batch of 32 x 1024.
torchrun_line() {  # processes, parallel
  torchrun --standalone --nproc_per_node "$1" benchmarks/train_throughput.py --preset gpt2 --data /tmp/shk-gpt2 \
    --dtype bf16 --compile --steps 60 --warmup 20 --batch-size 32 --parallel "$2" --out "/tmp/torchrun-$1-$2" --json "$R"
}
torchrun_line 1 fsdp
if [ "$(nvidia-smi -L | wc -l)" -ge 2 ]; then
  torchrun_line 2 ddp
  torchrun_line 2 fsdp
fi
python3 benchmarks/plot_results.py --loss-vs-time "docs/img/default_job_${GPU:-gpu}.png" \
  "eager=$OUT/default_job_eager_${GPU:-gpu}.jsonl" "CUDA graphs=$OUT/default_job_graphs_${GPU:-gpu}.jsonl"
fi
python3 benchmarks/plot_results.py --by-batch "$R" "docs/img/train_batch_${GPU:-gpu}.png"
