#!/usr/bin/env bash
# Training onto a full disk: the run directory is on a small tmpfs that fills
# while the job trains (metrics lines and a checkpoint every 5 steps). The job
# must stop on every rank with one clear error line naming a file in the run
# directory, leave no summary.json and no partial checkpoint under a
# checkpoint name, and the newest checkpoint must be intact: after the tmpfs
# is made larger, --resume auto continues from it (nothing skipped) and
# finishes. Run for checkpoint.async = true and false.
#   full_disk.sh HPCML_EXE WORK_DIR
# Needs root (mount -t tmpfs); skipped (exit 77) otherwise or when mounting fails.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
hpcml=$1 work=$2
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: needs root to mount a small tmpfs (running as uid $(id -u))"
  exit 77
fi
mnt="$work/mnt"
umount "$mnt" 2>/dev/null
rm -rf "$work" && mkdir -p "$mnt" && cd "$work" || exit 1
if ! mount -t tmpfs -o size=300k hpcml-full-disk-test "$mnt" 2>mount.err; then
  echo "SKIP: cannot mount a tmpfs here: $(head -1 mount.err)"
  exit 77
fi
trap 'cd /; umount "$mnt" 2>/dev/null' EXIT

out=/dev/null
fail() { echo "FAIL: $*"; echo "---- job output"; grep -v '^epoch\|^checkpoint' "$out" | tail -30; exit 1; }

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
evaluate = false
[parallel]
threads = 1
[checkpoint]
every_steps = 5
[run]
dir = "mnt/runs"
progress = "never"
TOML

for async in true false; do
  mount -o remount,size=300k "$mnt" || fail "cannot shrink the tmpfs"
  name="full-$async"
  out="out-$async.txt"
  timeout -k 10 120 mpiexec -n 2 "$hpcml" train job.toml --set "run.name=$name" \
    --set "checkpoint.async=$async" > "$out" 2>&1
  rc=$?
  [ "$rc" -ne 0 ] || fail "async=$async: the job exited 0 on a full disk"
  [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "async=$async: the job did not end within 120 s"
  # A checkpoint's write (agreed: "hpcml: error: ...") or rank 0's metrics
  # line ("hpcml: error on rank 0 of 2: ...", then MPI_Abort) meets the full disk.
  errors=$(grep -cE "hpcml: error(: | on rank)" "$out")
  [ "$errors" -eq 1 ] || fail "async=$async: $errors error lines, expected one"
  line=$(grep -E "hpcml: error(: | on rank)" "$out")
  printf '%s\n' "$line" | grep -qF "mnt/runs/$name/" ||
    fail "async=$async: the error does not name a file of the run directory: $line"
  [ ! -e "mnt/runs/$name/summary.json" ] || fail "async=$async: a summary.json was written"
  newest=$(ls mnt/runs/"$name"/checkpoints/ckpt-*.h5 2>/dev/null | sort | tail -1)
  [ -n "$newest" ] || fail "async=$async: no checkpoint was written before the disk filled"
  step=$((10#$(basename "$newest" .h5 | sed 's/^ckpt-//')))
  echo "async=$async: exit $rc; $line"

  # Room again: the run continues from its newest checkpoint and finishes.
  mount -o remount,size=50m "$mnt" || fail "cannot grow the tmpfs"
  end=$((step + 20))
  timeout -k 10 120 mpiexec -n 2 "$hpcml" train job.toml --set "run.name=$name" \
    --set "checkpoint.async=$async" --resume auto --set "train.max_steps=$end" > "$out" 2>&1
  rc=$?
  [ "$rc" -eq 0 ] || fail "async=$async: --resume auto after the full disk exited $rc"
  grep -qF "resumed from $newest at step $step " "$out" ||
    fail "async=$async: --resume auto did not continue from $newest"
  ! grep -q "skipping checkpoint" "$out" || fail "async=$async: a checkpoint was skipped"
  grep -qE "(^|, )$end steps in " "$out" || fail "async=$async: the run did not finish at step $end"
  echo "async=$async: resumed from step $step and finished at step $end"
  rm -rf "mnt/runs/$name"
done
echo "PASS: a full disk ends the job with one line naming the file; the newest checkpoint is intact"
exit 0
