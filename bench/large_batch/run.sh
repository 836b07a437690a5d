#!/usr/bin/env bash
# The large-batch experiment of docs/large-batch.md: the default MLP on
# Fashion-MNIST, 2 ranks, a fixed budget of EPOCHS epochs, global batch 128,
# 1024, 8192 and 32768 (per rank 64, 512, 1024 and 1024 x 4, 1024 x 16 with
# gradient accumulation), four methods:
#   sgd       SGD + momentum at the base rate (lr 0.05, tuned for batch 128), no warmup
#   linear    the same with the linear scaling rule (base_batch 128) and 2 warmup epochs
#   lars      LARS, lr 0.5 scaled linearly, eta 0.001, 2 warmup epochs, polynomial decay
#   lamb      LAMB, lr 0.01 scaled by the square-root rule, 2 warmup epochs, polynomial decay
# The LARS and LAMB rates were picked by one 2-epoch probe each at batch 1024
# (LARS 0.05 vs 0.5, LAMB 0.002 vs 0.01): no further tuning.
# Prints a table (final test accuracy, steps) and writes results.csv in OUT.
#   bench/large_batch/run.sh BUILD_DIR OUT [EPOCHS]
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR OUT [EPOCHS]}
out=${2:?usage: run.sh BUILD_DIR OUT [EPOCHS]}
epochs=${3:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
csv="$out/results.csv"
echo "global_batch,method,batch_per_rank,accumulate,steps,peak_lr,final_test_acc,seconds" > "$csv"
method_sets() {
  case $1 in
    sgd) echo 'optimizer.name="sgd" optimizer.lr=0.05 optimizer.scale_rule="none" optimizer.warmup_epochs=0.0' ;;
    linear) echo 'optimizer.name="sgd" optimizer.lr=0.05 optimizer.scale_rule="linear" optimizer.base_batch=128 optimizer.warmup_epochs=2.0' ;;
    lars) echo 'optimizer.name="lars" optimizer.lr=0.5 optimizer.scale_rule="linear" optimizer.base_batch=128 optimizer.lars_eta=0.001 optimizer.warmup_epochs=2.0 optimizer.schedule="poly"' ;;
    lamb) echo 'optimizer.name="lamb" optimizer.lr=0.01 optimizer.scale_rule="sqrt" optimizer.base_batch=128 optimizer.warmup_epochs=2.0 optimizer.schedule="poly"' ;;
  esac
}
for gb in 128 1024 8192 32768; do
  case $gb in
    128) b=64 k=1 ;; 1024) b=512 k=1 ;; 8192) b=1024 k=4 ;; 32768) b=1024 k=16 ;;
  esac
  for m in sgd linear lars lamb; do
    sets=(--set train.epochs=$epochs --set train.batch_size=$b --set train.accumulate=$k
          --set data.path="\"$root/data/fashion-mnist\"" --set run.dir="\"$out/runs\""
          --set run.name="\"b$gb-$m\"" --set run.progress=\"never\" --set parallel.threads=1)
    for s in $(method_sets $m); do sets+=(--set "$s"); done
    rm -rf "$out/runs/b$gb-$m"
    t0=$(date +%s.%N)
    log=$(mpiexec -n 2 "$build/jobs/hpcml" train "$root/configs/fashion_mnist_mlp.toml" "${sets[@]}" 2>&1) ||
      { echo "$log" | tail -5; echo "run b$gb-$m failed" >&2; exit 1; }
    t1=$(date +%s.%N)
    peak=$(echo "$log" | sed -n 's/.*lr .*= \([0-9.e-]*\);.*/\1/p; s/.*lr \([0-9.e-]*\) (not scaled.*/\1/p' | head -1)
    python3 - "$out/runs/b$gb-$m/summary.json" "$gb" "$m" "$b" "$k" "$peak" "$t0" "$t1" >> "$csv" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
acc = s.get("final_test_acc")
print(f"{sys.argv[2]},{sys.argv[3]},{sys.argv[4]},{sys.argv[5]},{s['steps']},{sys.argv[6]},"
      f"{acc:.4f},{float(sys.argv[8]) - float(sys.argv[7]):.1f}")
PY
    tail -1 "$csv"
  done
done
