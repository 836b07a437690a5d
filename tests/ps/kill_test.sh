#!/usr/bin/env bash
# A worker that dies or hangs mid-run must not leave the parameter server
# waiting (parallel.stall_timeout_s = 3 here). Two runs:
# - kill -9 of worker rank 1: the job ends, non-zero, within 30 s (under
#   mpiexec Hydra usually ends it at once, whatever -disable-auto-cleanup says;
#   otherwise the server's stall timeout does);
# - SIGSTOP of worker rank 1 (a hung worker, which no launcher notices): the
#   server's own deadline must end the job, non-zero, within 30 s, with its line
#   naming the silent worker.
#   kill_test.sh HPCML MPIEXEC WORK_DIR
set -uo pipefail
hpcml=$1 mpiexec=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
source "$here/common.sh"
make_dataset "$hpcml"
write_job

job="" name=""
cleanup() {
  [ -n "$job" ] && kill -9 -- "-$job" 2>/dev/null
  [ -n "$name" ] && pkill -9 -f -- "run.name=$name" 2>/dev/null
}
trap cleanup EXIT

run_and_hit() {  # SIGNAL
  local signal=$1
  name="ps-kill-$$-$RANDOM"
  setsid "$mpiexec" -disable-auto-cleanup -n 3 "$hpcml" train job.toml --set "run.name=$name" \
    --set parallel.mode=ps --set parallel.stall_timeout_s=3 --set train.epochs=100000 \
    > "$signal.txt" 2>&1 &
  job=$!
  for _ in $(seq 1 150); do
    [ -s "runs/$name/metrics.jsonl" ] && break
    kill -0 $job 2>/dev/null || { cat "$signal.txt"; fail "the job ended before training"; }
    sleep 0.2
  done
  [ -s "runs/$name/metrics.jsonl" ] || { cat "$signal.txt"; fail "no epoch within 30 s"; }
  local victim=""
  for p in $(pgrep -f -- "run.name=$name"); do
    if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx 'PMI_RANK=1'; then victim=$p; fi
  done
  [ -n "$victim" ] || fail "no process of world rank 1 found"
  kill "-$signal" "$victim"
  for _ in $(seq 1 300); do
    kill -0 $job 2>/dev/null || break
    sleep 0.1
  done
  kill -0 $job 2>/dev/null && { cat "$signal.txt"; fail "SIG$signal: the job still runs 30 s later"; }
  wait $job
  local rc=$?
  job=""
  pkill -9 -f -- "run.name=$name" 2>/dev/null
  [ $rc -ne 0 ] || { cat "$signal.txt"; fail "SIG$signal: exit 0"; }
  echo "ok: SIG$signal of worker rank 1: exit $rc; $(grep -m1 -E 'hpcml: error|EXIT STRING' "$signal.txt")"
}

run_and_hit KILL
run_and_hit STOP
# Rank 1 must be named; rank 0 may be too (it can be blocked in a workers'
# collective with the stopped rank, so the server hears from neither).
grep -qE 'parameter server \(rank 2\): no message from worker rank\(s\) (0, )?1 for [0-9]+ s' STOP.txt ||
  { cat STOP.txt; fail "SIGSTOP: no line from the server naming the silent worker"; }
echo "PASS"
