#!/bin/bash
# A training run on the single-file layout (collective MPI-IO reads) gives the
# same params_digest and test accuracy as on the sharded layout of the same data.
# usage: layout_train_test.sh HPCML CONFIG LAUNCHER...   e.g. ... mpiexec -n 2
set -u
HPCML=$1
CONFIG=$2
shift 2
RUN=("$@" "$HPCML")
TMP=$(mktemp -d /tmp/hpcml-test-layout-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
expect_ok() { "${RUN[@]}" "$@" > "$TMP/out" 2>&1 || { cat "$TMP/out"; fail "exit $? from: $*"; }; }

# 301 train and 61 test samples of 8 features, 3 classes (prime counts: short
# last batches and evaluation blocks that differ between ranks).
python3 - "$TMP" <<'PY' || fail "generating npy"
import struct, sys
def npy(path, descr, shape, payload):
    h = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
    open(path, "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + payload)
for split, n in (("train", 301), ("test", 61)):
    y = [(i * 7 + 3) % 3 for i in range(n)]
    x = [((i * 31 + j * 17) % 23) / 23.0 + (1.0 if j % 3 == y[i] else 0.0) for i in range(n) for j in range(8)]
    npy(f"{sys.argv[1]}/{split}-x.npy", "<f4", f"({n}, 8)", struct.pack(f"<{n * 8}f", *x))
    npy(f"{sys.argv[1]}/{split}-y.npy", "<i4", f"({n},)", struct.pack(f"<{n}i", *y))
PY
for split in train test; do
  expect_ok shard npy --features "$TMP/$split-x.npy" --labels "$TMP/$split-y.npy" --split $split \
    --classes 3 --out "$TMP/shards" --shards 3 --name tiny
  expect_ok shard npy --features "$TMP/$split-x.npy" --labels "$TMP/$split-y.npy" --split $split \
    --classes 3 --out "$TMP/single" --layout single-file --name tiny
done
[ -f "$TMP/single/train.h5" ] && [ -f "$TMP/single/test.h5" ] || fail "single-file layout files"
grep -q '"layout": "single-file"' "$TMP/single/manifest.json" || fail "manifest layout key"

for layout in shards single; do
  expect_ok train "$CONFIG" --set data.path="$TMP/$layout" --set run.dir="$TMP/runs" \
    --set run.name=$layout --set model.hidden=[16] --set train.batch_size=5 \
    --set train.epochs=2 --set parallel.threads=1
  cp "$TMP/out" "$TMP/out-$layout"
done
grep -q "collective MPI-IO" "$TMP/out-single" || { cat "$TMP/out-single"; fail "not read collectively"; }
digest() { python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(s['params_digest'], s['final_test_acc'], s['steps'])" "$1"; }
a=$(digest "$TMP/runs/shards/summary.json") || fail "summary of the shards run"
b=$(digest "$TMP/runs/single/summary.json") || fail "summary of the single-file run"
[ "$a" = "$b" ] || fail "shards run ended with '$a', single-file run with '$b'"
echo "same params_digest, test accuracy and steps on both layouts: $a"
