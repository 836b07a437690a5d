#!/usr/bin/env bash
# Multi-node tests on the namespace cluster of `scripts/slurm-local.sh start --nodes 2`
# (docs/testing.md, "Multi-node"). One case per call:
#
#   slurm_multinode.sh HPCML CASE
#     info    srun -N2 -n4 hpcml info --ranks: 4 ranks on 2 nodes, 2 on each
#     train   a 20-step training run with srun on 2 nodes and on 1 node (4 ranks, 1 thread
#             each): ring all-reduce, no sharded update -> the same params_digest; defaults
#             (auto, sharded update where it applies) -> final loss within 1e-4 relative
#     array   a 2-task array (1 CPU each): the tasks run on both nodes
#     submit  hpcml submit with slurm.nodes = 2 runs to completion on 2 nodes
#     scale   hpcml scale --slurm --ranks 1,2 with one rank per node: the points run on
#             1 and 2 nodes and the report job writes a row for 2 ranks on 2 nodes
#     mpiexec MPICH's mpiexec (Hydra) inside a 2-node allocation, which starts its proxies
#             on the nodes through srun: from salloc (mpiexec on this host) and from a
#             batch script (mpiexec on n1), hpcml info --ranks shows 2 ranks on each of
#             n1 and n2; hpcml submit with slurm.launcher = "mpiexec" and slurm.nodes = 2
#             trains to completion with 1 rank on each node
#
# Exits 77 (CTest SKIP_RETURN_CODE) with the reason when no cluster of at least
# 2 nodes answers: not started, or namespaces refused (the reason slurm-local.sh
# recorded). The cluster's CPUs are shared out (1 per node on a 2-core machine),
# so 4 ranks on 2 nodes are started with --overcommit.
set -euo pipefail

HPCML="$1"
CASE="$2"
DIR="${HPCML_SLURM_DIR:-${TMPDIR:-/tmp}/hpcml-slurm}"
if [ -z "${SLURM_CONF:-}" ] && [ -f "$DIR/slurm.conf" ]; then export SLURM_CONF="$DIR/slurm.conf"; fi

skip() {
  echo "SKIP: $*"
  exit 77
}
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

if [ -f "$DIR/refused" ]; then skip "$(cat "$DIR/refused")"; fi
nodes="$(sinfo -h -N -o '%N %T' 2>/dev/null | awk '$2 ~ /^(idle|mixed|allocated)/' | wc -l || true)"
[ "${nodes:-0}" -ge 2 ] ||
  skip "needs a Slurm cluster of 2 nodes: scripts/slurm-local.sh start --nodes 2 (nodes up: ${nodes:-0})"

WORK="$(mktemp -d "${HPCML_TEST_DIR:-${TMPDIR:-/tmp}}/hpcml-multinode-$CASE.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

# Fashion-MNIST shards, as the slurm tests find them (the jobs see the same file system).
dataset() {
  local repo="${HPCML_SOURCE_DIR:-}/data/fashion-mnist" tmp="${TMPDIR:-/tmp}/hpcml-launch-fmnist"
  if [ -n "${HPCML_SOURCE_DIR:-}" ] && [ -f "$repo/manifest.json" ]; then
    echo "$repo"
    return
  fi
  [ -f "$tmp/manifest.json" ] || "$HPCML" shard fashion-mnist --out "$tmp" >&2
  echo "$tmp"
}

config() {
  cat >"$1" <<EOF
[data]
path = "$(dataset)"
verify = false
[model]
hidden = [16]
[train]
epochs = 1000
batch_size = 32
max_steps = 20
evaluate = false
[parallel]
threads = 1
[run]
dir = "$WORK/runs"
progress = "never"
[slurm]
time = "5"
EOF
}

json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

SRUN=(srun --mpi=pmi2 --overcommit --kill-on-bad-exit=1 --time=5)

case "$CASE" in
  info)
    out="$(timeout 120 "${SRUN[@]}" -N2 -n4 "$HPCML" info --ranks 2>&1)" || fail "srun: $out"
    echo "$out"
    grep -q "4 on 2 node(s), 2 on this node" <<<"$out" || fail "hpcml info does not see 4 ranks on 2 nodes"
    [ "$(grep -cE '^rank [0-9]/4 on n1: local rank [01]/2' <<<"$out")" -eq 2 ] || fail "not 2 ranks on n1"
    [ "$(grep -cE '^rank [0-9]/4 on n2: local rank [01]/2' <<<"$out")" -eq 2 ] || fail "not 2 ranks on n2"
    ;;
  train)
    config t.toml
    run() { # name nodes extra-sets...
      local name="$1" n="$2"
      shift 2
      timeout 180 "${SRUN[@]}" -N"$n" -n4 "$HPCML" train t.toml --set "run.name=\"$name\"" "$@" ||
        fail "training on $n node(s) ($name) failed"
      [ "$(json "runs/$name/summary.json" nodes)" = "$n" ] || fail "$name: summary.json says nodes != $n"
    }
    ring=(--set 'parallel.algo="ring"' --set parallel.sharded_update=false)
    run ring1 1 "${ring[@]}"
    run ring2 2 "${ring[@]}"
    d1="$(json runs/ring1/summary.json params_digest)"
    d2="$(json runs/ring2/summary.json params_digest)"
    echo "ring: 1 node $d1, 2 nodes $d2"
    [ "$d1" = "$d2" ] || fail "ring all-reduce: params_digest differs between 1 and 2 nodes"
    run auto1 1
    run auto2 2
    python3 - runs/auto1/summary.json runs/auto2/summary.json <<'EOF' || fail "defaults: final loss differs"
import json, sys
a, b = (json.load(open(p))["final_train_loss"] for p in sys.argv[1:3])
print(f"defaults: final_train_loss 1 node {a:.9g}, 2 nodes {b:.9g}, relative difference {abs(a - b) / abs(a):.3g}")
sys.exit(0 if abs(a - b) <= 1e-4 * abs(a) else 1)
EOF
    ;;
  array)
    # Each task takes one CPU; each node has one (or a share): both run at once, one per node.
    jid="$(sbatch --parsable --array=0-1 --time=5 --output="$WORK/task-%a-%N.out" \
      --wrap 'sleep 2; hostname' 2>&1)" || fail "sbatch: $jid"
    for _ in $(seq 300); do
      [ -z "$(squeue -h -j "$jid" 2>/dev/null)" ] && break
      sleep 0.2
    done
    ls "$WORK"/task-*.out
    [ -s "$WORK/task-0-n1.out" ] || [ -s "$WORK/task-0-n2.out" ] || fail "task 0 did not run"
    [ -s "$WORK/task-1-n1.out" ] || [ -s "$WORK/task-1-n2.out" ] || fail "task 1 did not run"
    { ls "$WORK"/task-*-n1.out && ls "$WORK"/task-*-n2.out; } >/dev/null 2>&1 ||
      fail "the array's tasks did not land on both nodes"
    ;;
  submit)
    config t.toml
    sed -i 's/^\[slurm\]$/[slurm]\nnodes = 2\nntasks_per_node = 1\njob_name = "mn-submit"/' t.toml
    out="$("$HPCML" submit t.toml --site local --set 'run.name="sub"' 2>&1)" || fail "submit: $out"
    echo "$out"
    run="$(find "$WORK/runs" -mindepth 1 -maxdepth 1 -type d | head -n1)"
    [ -n "$run" ] || fail "submit wrote no run directory under $WORK/runs"
    for _ in $(seq 600); do
      grep -q '^exited' "$run/state" 2>/dev/null && break
      sleep 0.2
    done
    cat "$run/state" || true
    grep -q '^exited 0' "$run/state" || { cat "$run"/slurm-*.out || true; fail "the job did not exit 0"; }
    s="$run/train/summary.json"
    if [ "$(json "$s" nodes)" != 2 ] || [ "$(json "$s" ranks)" != 2 ]; then
      fail "$s: not 2 ranks on 2 nodes"
    fi
    ;;
  scale)
    config t.toml
    sed -i 's/^max_steps = 20$/max_steps = 5/; s/^\[slurm\]$/[slurm]\nntasks_per_node = 1/' t.toml
    out="$("$HPCML" scale t.toml --ranks 1,2 --slurm --site local --out "$WORK/study" 2>&1)" ||
      fail "scale: $out"
    echo "$out"
    jobs="$(sed -n 's/^submitted [0-9]* job(s): //p' <<<"$out")"
    [ -n "$jobs" ] || fail "scale printed no job ids"
    for _ in $(seq 600); do
      [ -z "$(squeue -h -j "$jobs" 2>/dev/null)" ] && break
      sleep 0.2
    done
    [ -s "$WORK/study/report/report.md" ] || fail "no report after the jobs $jobs ended"
    for n in 1 2; do
      [ "$(json "$WORK/study/r$n-t1-k0/summary.json" nodes)" = "$n" ] || fail "the $n-rank point did not run on $n node(s)"
    done
    grep -E '^\| 2 \| 2 x 1 \| 2 \|' "$WORK/study/report/report.md" ||
      fail "the report has no row for 2 ranks on 2 nodes"
    ;;
  mpiexec)
    # 2 x 2 in `hpcml info --ranks` output: 2 ranks on n1 and 2 on n2.
    two_by_two() {
      grep -q "4 on 2 node(s), 2 on this node" <<<"$1" || fail "$2: hpcml info does not see 4 ranks on 2 nodes"
      [ "$(grep -cE '^rank [0-9]/4 on n1: local rank [01]/2' <<<"$1")" -eq 2 ] || fail "$2: not 2 ranks on n1"
      [ "$(grep -cE '^rank [0-9]/4 on n2: local rank [01]/2' <<<"$1")" -eq 2 ] || fail "$2: not 2 ranks on n2"
      # The ranks also carry the srun step of Hydra's proxies: mpiexec must still be named.
      grep -qE '^  launcher +mpiexec \(inside Slurm job' <<<"$1" || fail "$2: hpcml info does not name mpiexec"
      ! grep -q WARNING <<<"$1" || fail "$2: hpcml info warns"
    }
    # salloc: mpiexec runs on this host, outside the nodes; its proxies start through srun.
    out="$(timeout 120 salloc -N2 -n4 --overcommit --time=5 \
      timeout 100 mpiexec -n 4 -ppn 2 "$HPCML" info --ranks 2>&1)" || fail "salloc + mpiexec: $out"
    echo "$out"
    two_by_two "$out" "salloc + mpiexec"
    # sbatch: mpiexec runs in the batch shell on n1.
    # shellcheck disable=SC2016  # $(hostname) is for the batch shell
    printf '#!/bin/bash\necho "batch shell on $(hostname)"\ntimeout 100 mpiexec -n 4 -ppn 2 "%s" info --ranks\n' \
      "$HPCML" >job.sh
    timeout 150 sbatch --wait -N2 -n4 --overcommit --time=5 --output="$WORK/job.out" job.sh >/dev/null ||
      fail "sbatch + mpiexec: $(cat "$WORK/job.out" 2>/dev/null)"
    out="$(cat "$WORK/job.out")"
    echo "$out"
    grep -q '^batch shell on n1$' <<<"$out" || fail "the batch shell did not run on n1"
    two_by_two "$out" "sbatch + mpiexec"
    # hpcml's own batch script with launcher = "mpiexec": 1 rank on each node.
    config t.toml
    sed -i 's/^\[slurm\]$/[slurm]\nnodes = 2\nntasks_per_node = 1\nlauncher = "mpiexec"\njob_name = "mn-mpiexec"/' t.toml
    out="$("$HPCML" submit t.toml --site local --set 'run.name="mpx"' 2>&1)" || fail "submit: $out"
    echo "$out"
    run="$(find "$WORK/runs" -mindepth 1 -maxdepth 1 -type d | head -n1)"
    [ -n "$run" ] || fail "submit wrote no run directory under $WORK/runs"
    grep -rqE '^(mpiexec|'"'"'mpiexec'"'"') -n 2 -ppn 1' "$run" ||
      fail "no batch script under $run starts the ranks with mpiexec -n 2 -ppn 1"
    for _ in $(seq 600); do
      grep -q '^exited' "$run/state" 2>/dev/null && break
      sleep 0.2
    done
    cat "$run/state" || true
    grep -q '^exited 0' "$run/state" || { cat "$run"/slurm-*.out || true; fail "the mpiexec job did not exit 0"; }
    s="$run/train/summary.json"
    if [ "$(json "$s" nodes)" != 2 ] || [ "$(json "$s" ranks)" != 2 ]; then
      fail "$s: not 2 ranks on 2 nodes"
    fi
    ;;
  *) fail "unknown case '$CASE'" ;;
esac
echo "PASS: $CASE"
