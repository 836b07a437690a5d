#!/usr/bin/env bash
# Bad parameter-server settings: one error line naming the key, a non-zero
# exit of the job (every rank agrees on the error), and no rank left behind.
#   config_test.sh HPCML MPIEXEC WORK_DIR
set -uo pipefail
hpcml=$1 mpiexec=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
source "$here/common.sh"
make_dataset "$hpcml"
write_job

expect_error() {  # NP KEY-IN-MESSAGE [args...]
  local np=$1 key=$2
  shift 2
  timeout 60 "$mpiexec" -n "$np" "$hpcml" train job.toml "$@" > out.txt 2>&1
  local rc=$?
  [ $rc -ne 0 ] || { cat out.txt; fail "$*: exit 0"; }
  [ $rc -ne 124 ] || { cat out.txt; fail "$*: hung"; }
  local lines
  lines=$(grep -c 'error' out.txt)
  [ "$lines" -eq 1 ] || { cat out.txt; fail "$*: $lines error lines, want 1"; }
  grep -q -- "$key" out.txt || { cat out.txt; fail "$*: the error does not name $key"; }
  echo "ok ($rc): $(grep error out.txt)"
}
ps=(--set parallel.mode=ps)
expect_error 3 "parallel.servers" "${ps[@]}" --set parallel.servers=3
expect_error 3 "parallel.servers" "${ps[@]}" --set parallel.servers=4
expect_error 3 "parallel.mode" --set parallel.mode=parameter_server
expect_error 3 "parallel.staleness" "${ps[@]}" --set parallel.staleness=-1
expect_error 3 "parallel.servers" "${ps[@]}" --set parallel.servers=0
expect_error 3 "parallel.compression" "${ps[@]}" --set parallel.compression=fp16
expect_error 3 "parallel.backend" "${ps[@]}" --set parallel.backend=cuda
# Checkpoints need one consistent state: not built for stale-synchronous runs.
ssp=("${ps[@]}" --set parallel.staleness=2)
expect_error 3 "checkpoint.every_steps" "${ssp[@]}" --set checkpoint.every_steps=5
expect_error 3 "checkpoint.every_minutes" "${ssp[@]}" --set checkpoint.every_minutes=1
expect_error 3 "--resume" "${ssp[@]}" --resume auto --set run.name=r
# 3 servers, but a model without hidden layers has 2 tensors (shards are whole tensors).
expect_error 4 "parallel.servers" "${ps[@]}" --set parallel.servers=3 --set 'model.hidden=[]'
echo "PASS"
