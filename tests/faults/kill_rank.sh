#!/usr/bin/env bash
# kill -9 of one rank during training: every other rank and the launcher must
# exit within HPCML_FAULT_EXIT_S (default 60) seconds, non-zero, with a message
# naming the lost rank, and no process of the job may be left behind.
#   kill_rank.sh HPCML_EXE mpiexec|srun WORK_DIR
# mpiexec: Hydra itself kills the job when a rank dies (in about 0.05 s) and
#   names the dead process by pid and host; the test accepts that message or
#   hpcml's own "rank 1 (pid N ...) is gone".
# srun (label slurm; skipped, exit 77, when no Slurm answers): run without
#   --kill-on-bad-exit, so the survivors must notice the dead peer themselves
#   (comm's peer watch) and abort with exit status 5 naming rank 1.
# Then the run continues: `--resume auto` must take the newest checkpoint (a
# checkpoint every 5 steps, written in the background, so the kill, at a
# random moment, often lands inside a write: what it leaves under a checkpoint
# name must be intact, and a .tmp is ignored) and finish (train.max_steps).
# The test bounds itself: about 20 s to reach training, the exit limit, then
# it kills whatever is left of its process group (and scancels its job); the
# resume is bounded to 120 s.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
hpcml=$1 launcher=$2 work=$3
limit=${HPCML_FAULT_EXIT_S:-60}
name="faults-kill-$launcher-$$-$RANDOM"
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1

fail() { echo "FAIL: $*"; echo "---- job output"; cat out.txt 2>/dev/null | grep -v '^epoch' | tail -40; exit 1; }

if [ "$launcher" = srun ]; then
  if [ -z "${SLURM_CONF:-}" ] && [ -f "${HPCML_SLURM_DIR:-/tmp/hpcml-slurm}/slurm.conf" ]; then
    export SLURM_CONF="${HPCML_SLURM_DIR:-/tmp/hpcml-slurm}/slurm.conf"
  fi
  state=$(timeout 10 sinfo -h -o %T 2>&1 | head -1)
  if ! printf '%s' "$state" | grep -qE '^(idle|mix|alloc)'; then
    echo "SKIP: no Slurm node to run on (sinfo: ${state:-no answer}; start a cluster with scripts/slurm-local.sh start)"
    exit 77
  fi
fi

# A small learnable dataset: 3 classes, 16 features, 4000 samples.
source "$here/common.sh"
make_dataset "$hpcml"
cat > job.toml <<TOML
[data]
path = "data"
[model]
hidden = [64]
[train]
epochs = 100000
batch_size = 16
[parallel]
threads = 1
[checkpoint]
every_steps = 5
[run]
dir = "runs"
name = "$name"
TOML

train=("$hpcml" train job.toml --set "run.name=$name")
if [ "$launcher" = srun ]; then
  cmd=(srun -n 2 --mpi=pmi2 --kill-on-bad-exit=0 --job-name="$name" "${train[@]}")
else
  cmd=(mpiexec -n 2 "${train[@]}")
fi
setsid "${cmd[@]}" > out.txt 2>&1 &
job=$!
cleanup() {
  kill -9 -- "-$job" 2>/dev/null
  [ "$launcher" = srun ] && scancel --name="$name" 2>/dev/null
  pkill -9 -f -- "run.name=$name" 2>/dev/null
}
trap cleanup EXIT

# Wait until the ranks have written steps (metrics.jsonl has lines) and a checkpoint.
for _ in $(seq 1 100); do
  [ -s "runs/$name/metrics.jsonl" ] && [ "$(wc -l < "runs/$name/metrics.jsonl")" -ge 2 ] &&
    compgen -G "runs/$name/checkpoints/ckpt-*.h5" > /dev/null && break
  kill -0 $job 2>/dev/null || fail "the job ended before training (exit $(wait $job; echo $?))"
  sleep 0.2
done
if [ ! -s "runs/$name/metrics.jsonl" ]; then
  if [ "$launcher" = srun ] && grep -q "queued and waiting for resources" out.txt &&
     ! grep -q "has been allocated resources" out.txt; then
    echo "SKIP: the Slurm cluster is busy (the job was not allocated within 20 s)"
    exit 77
  fi
  fail "no steps written within 20 s"
fi

victim=""
for p in $(pgrep -f -- "^$hpcml train .*run.name=$name"); do
  if tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qxE 'PMI_RANK=1|SLURM_PROCID=1'; then victim=$p; fi
done
[ -n "$victim" ] || fail "rank 1's process not found"
sleep "0.$((RANDOM % 10))"  # a random moment, often inside a checkpoint write
t0=$(date +%s%N)
kill -9 "$victim"
echo "killed rank 1 (pid $victim)"

rc=""
for _ in $(seq 1 $((limit * 10))); do
  if ! kill -0 $job 2>/dev/null; then wait $job; rc=$?; break; fi
  sleep 0.1
done
t1=$(date +%s%N)
elapsed_ms=$(( (t1 - t0) / 1000000 ))
[ -n "$rc" ] || fail "the launcher did not exit within $limit s of the kill"
echo "launcher ($launcher) exited with status $rc after $elapsed_ms ms"
[ "$rc" -ne 0 ] || fail "the launcher exited 0 after a rank was killed"

if [ "$launcher" = srun ]; then
  grep -qE "hpcml: rank 1 \(pid $victim on this node\) is gone" out.txt ||
    fail "no message from the survivors naming rank 1 (pid $victim)"
  grep -q "MPI_Abort(MPI_COMM_WORLD, 5)" out.txt || fail "the survivors did not abort with status 5"
else
  grep -qE "PID $victim RUNNING AT|hpcml: rank 1 \(pid $victim on this node\) is gone" out.txt ||
    fail "no message naming the lost rank (pid $victim)"
fi

# Nothing of the job may be left (allow the launcher's last cleanup 3 s).
for _ in $(seq 1 30); do
  left=$(pgrep -af -- "run.name=$name" || true)
  [ -z "$left" ] && break
  sleep 0.1
done
[ -z "$left" ] || fail "processes left behind: $left"
echo "every rank and the launcher gone $elapsed_ms ms after the kill; nothing left"
grep -E "BAD TERMINATION|PID $victim|is gone|task 1" out.txt

# The run continues from its newest checkpoint, which must be intact (nothing
# skipped), and finishes 40 steps later.
newest=$(ls runs/"$name"/checkpoints/ckpt-*.h5 2>/dev/null | sort | tail -1)
[ -n "$newest" ] || fail "no checkpoint left after the kill"
step=$((10#$(basename "$newest" .h5 | sed 's/^ckpt-//')))
end=$((step + 40))
if [ "$launcher" = srun ]; then
  rcmd=(srun -n 2 --mpi=pmi2 --job-name="$name" "${train[@]}")
else
  rcmd=(mpiexec -n 2 "${train[@]}")
fi
timeout -k 10 120 "${rcmd[@]}" --resume auto --set "train.max_steps=$end" > resume.txt 2>&1
rrc=$?
cp resume.txt out.txt  # for fail()'s listing
[ "$rrc" -eq 0 ] || fail "--resume auto after the kill exited $rrc"
grep -qF "resumed from $newest at step $step " resume.txt ||
  fail "--resume auto did not continue from the newest checkpoint $newest (step $step)"
! grep -q "skipping checkpoint" resume.txt || fail "--resume auto skipped a checkpoint"
grep -qE "(^|, )$end steps in " resume.txt || fail "the resumed run did not finish at step $end"
grep -qE '"restarts": *1' "runs/$name/summary.json" || fail "summary.json does not say restarts 1"
echo "PASS: killed at step >= $step; --resume auto continued from $newest and finished at step $end"
exit 0
