#!/usr/bin/env bash
# Synchronous parameter server against all-reduce with the same global batch
# (2 workers x 16): all-reduce on 2 ranks, PS with 1 server on 3 ranks and with
# 2 servers on 4 ranks end with the same weights, bit for bit (params_digest:
# the server sums the 2 workers' gradients and divides by 2, the bits of the
# all-reduce average; docs/parameter-server.md). Also with accumulation (sgd).
# With 3 workers the sum of 3 depends on the order: PS (1 server on 4 ranks)
# adds in worker order, as the hierarchical all-reduce does on one node, so
# 3-rank all-reduce with parallel.algo = "hierarchical" gives the same bits.
# The summary names the mode; ps.jsonl has one record per step and server,
# with staleness 0.
#   sync_test.sh HPCML MPIEXEC WORK_DIR OPTIMIZER
set -uo pipefail
hpcml=$1 mpiexec=$2 work=$3 opt=$4
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
source "$here/common.sh"
make_dataset "$hpcml"
write_job

run() {  # NAME NP [--set ...]
  local name=$1 np=$2
  shift 2
  "$mpiexec" -n "$np" "$hpcml" train job.toml --set "run.name=$name" \
    --set "optimizer.name=$opt" "$@" > "$name.out" 2>&1 ||
    { cat "$name.out"; fail "$name (-n $np) exited non-zero"; }
  [ -f "runs/$name/summary.json" ] || { cat "$name.out"; fail "$name wrote no summary.json"; }
}
check_same() {  # REFERENCE OTHER
  local a b
  a=$(field "runs/$1/summary.json" params_digest)
  b=$(field "runs/$2/summary.json" params_digest)
  [ "$a" = "$b" ] || fail "$opt: $2 ended with weights $b, $1 with $a"
  echo "ok: $opt: $2 = $1 ($a)"
}

extra=()
[ "$opt" = sgd ] && extra=(--set train.accumulate=2)
run ar 2 "${extra[@]}"
run ps1 3 --set parallel.mode=ps "${extra[@]}"
run ps2 4 --set parallel.mode=ps --set parallel.servers=2 "${extra[@]}"
check_same ar ps1
check_same ps1 ps2
run ar3 3 --set parallel.algo=hierarchical "${extra[@]}"
run ps3 4 --set parallel.mode=ps "${extra[@]}"
check_same ar3 ps3

grep -q '^  mode  ps: servers=2 .* workers=2 staleness=0 (synchronous)' ps2.out ||
  { cat ps2.out; fail "no mode line for ps in the log"; }
grep -q '^  mode  allreduce' ar.out || { cat ar.out; fail "no mode line for allreduce in the log"; }
[ "$(field runs/ps2/summary.json mode)" = ps ] || fail "summary.json: mode is not ps"
[ "$(field runs/ps2/summary.json servers)" = 2 ] || fail "summary.json: servers is not 2"
[ "$(field runs/ps2/summary.json staleness)" = 0 ] || fail "summary.json: staleness is not 0"
[ "$(field runs/ps2/summary.json ranks)" = 2 ] || fail "summary.json: ranks (workers) is not 2"
[ "$(field runs/ps2/summary.json ps.staleness_max)" = 0 ] || fail "summary.json: staleness_max"
steps=$(field runs/ps2/summary.json steps)
lines=$(wc -l < runs/ps2/ps.jsonl)
[ "$lines" -eq $((2 * steps)) ] || fail "ps.jsonl has $lines lines, want 2 servers x $steps steps"
echo "PASS"
