#!/usr/bin/env bash
# Checkpoints of a synchronous parameter-server run are the files an
# all-reduce run writes: the servers' shards of the parameters and of the
# optimizer state (adam: two slots) reach rank 0 before each save. With a
# constant learning rate (so that 1 epoch + 1 resumed epoch is the schedule of
# 2 epochs):
# - the checkpoint after epoch 1 of PS (2 servers, 2 workers) loads with the
#   same parameter and state digests as all-reduce's (2 ranks);
# - PS resumed from it ends with the weights of a 2-epoch all-reduce run;
# - ps.jsonl continues (one record per step and server over both runs).
#   checkpoint_test.sh HPCML MPIEXEC WORK_DIR
set -uo pipefail
hpcml=$1 mpiexec=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
source "$here/common.sh"
make_dataset "$hpcml"
write_job
common=(--set optimizer.schedule=constant --set optimizer.name=adam)
ps=(--set parallel.mode=ps --set parallel.servers=2)
run() {  # LOG NP args...
  local log=$1 np=$2
  shift 2
  "$mpiexec" -n "$np" "$hpcml" train job.toml "${common[@]}" "$@" > "$log" 2>&1 ||
    { cat "$log"; fail "$log: exit non-zero"; }
}
run ar-full.out 2 --set run.name=ar-full
run ar-half.out 2 --set run.name=ar-half --set train.epochs=1
run ps-half.out 4 --set run.name=ps-half --set train.epochs=1 --set checkpoint.every_steps=40 "${ps[@]}"
grep -q 'checkpoint at step 40:' ps-half.out || { cat ps-half.out; fail "no checkpoint at step 40"; }
run ar-res.out 2 --set run.name=ar-half --resume auto
run ps-res.out 4 --set run.name=ps-half --resume auto "${ps[@]}"

loaded() { grep -o 'loaded parameters .*' "$1" || { cat "$1"; fail "$1: no 'resumed from' line"; }; }
[ "$(loaded ps-res.out)" = "$(loaded ar-res.out)" ] ||
  fail "the ps checkpoint differs: ps $(loaded ps-res.out); all-reduce $(loaded ar-res.out)"
echo "ok: checkpoint after epoch 1: $(loaded ps-res.out)"
want=$(field runs/ar-full/summary.json params_digest)
got=$(field runs/ps-half/summary.json params_digest)
[ "$got" = "$want" ] || fail "ps resumed ended with $got, 2-epoch all-reduce with $want"
echo "ok: ps resumed = all-reduce 2 epochs ($want)"
steps=$(field runs/ps-half/summary.json steps)
lines=$(wc -l < runs/ps-half/ps.jsonl)
[ "$lines" -eq $((2 * steps)) ] || fail "ps.jsonl has $lines lines, want 2 servers x $steps steps"
last=$(tail -1 runs/ps-half/ps.jsonl | python3 -c 'import json,sys; print(json.load(sys.stdin)["global_step"])')
[ "$last" = "$steps" ] || fail "ps.jsonl ends at step $last, want $steps"
echo "PASS"
