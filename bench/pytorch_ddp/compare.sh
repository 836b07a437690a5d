#!/usr/bin/env bash
# Side by side, in one run: the CNN of configs/fashion_mnist_cnn.toml trained by
# hpcml (mpiexec, 2 ranks x 1 thread, omp backend) and by PyTorch DDP on CPU
# (gloo, 2 processes x 1 thread), the same layers, batch 64 per rank, SGD.
# Each side is timed over STEPS steps after WARMUP steps; the pair is run
# REPEATS times alternately and each side's median is reported with the ratio.
#   bench/pytorch_ddp/compare.sh BUILD_DIR [STEPS] [REPEATS]
# Needs: Debian's python3-torch (apt-get install python3-torch) and the shards
# of `hpcml shard fashion-mnist --out data/fashion-mnist`.
set -euo pipefail
build=${1:?usage: compare.sh BUILD_DIR [STEPS] [REPEATS]}
steps=${2:-300}
repeats=${3:-3}
warmup=20
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=/usr/bin/python3
$py -c 'import torch' 2>/dev/null || { echo "compare.sh: python3-torch is not installed" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
hp=() pt=()
for r in $(seq "$repeats"); do
  # hpcml: steps 1..WARMUP+STEPS; samples/s of the steps after the warm-up from metrics.jsonl.
  mpiexec -n 2 "$build/jobs/hpcml" train "$root/configs/fashion_mnist_cnn.toml" \
    --set data.path="\"$root/data/fashion-mnist\"" --set train.max_steps=$((warmup + steps)) \
    --set train.evaluate=false --set parallel.threads=1 --set run.dir="\"$tmp\"" \
    --set run.name="\"r$r\"" --set run.progress=\"never\" > /dev/null
  hp+=("$($py - "$tmp/r$r/metrics.jsonl" "$warmup" <<'PY'
import json, sys
steps = [json.loads(l) for l in open(sys.argv[1]) if '"type":"step"' in l]
t = sum(s["step_s"] for s in steps[int(sys.argv[2]):])
print(f"{(len(steps) - int(sys.argv[2])) * 128 / t:.1f}")
PY
)")
  pt+=("$($py "$here/cnn_ddp.py" --ranks 2 --steps "$steps" --warmup "$warmup" |
    sed -n 's/.*samples_per_s=\([0-9.]*\).*/\1/p')")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
h=$(median "${hp[@]}") p=$(median "${pt[@]}")
echo "# CNN of configs/fashion_mnist_cnn.toml, 2 ranks x 1 thread, batch 64/rank, $steps steps after $warmup, $repeats repeats"
echo "# CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
echo "hpcml        samples/s: ${hp[*]}  median $h"
echo "pytorch-ddp  samples/s: ${pt[*]}  median $p  ($($py -c 'import torch; print("torch", torch.__version__)'))"
echo "ratio hpcml / pytorch-ddp: $(awk -v a="$h" -v b="$p" 'BEGIN { printf "%.2f", a / b }')"
