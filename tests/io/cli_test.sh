#!/bin/bash
# End-to-end `hpcml shard` on small generated inputs.
# usage: cli_test.sh HPCML [LAUNCHER...]   e.g. cli_test.sh ./hpcml mpiexec -n 2
set -u
HPCML=$1
shift
RUN=("$@" "$HPCML")
TMP=$(mktemp -d /tmp/hpcml-test-cli-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
expect_ok() { "${RUN[@]}" "$@" > "$TMP/out" 2>&1 || { cat "$TMP/out"; fail "exit $? from: $*"; }; }
expect_error() {  # expect_error PATTERN ARGS...: non-zero exit and PATTERN in the output
  local pattern=$1
  shift
  if "${RUN[@]}" "$@" > "$TMP/out" 2>&1; then cat "$TMP/out"; fail "succeeded: $*"; fi
  grep -q -- "$pattern" "$TMP/out" || { cat "$TMP/out"; fail "no '$pattern' in the output of: $*"; }
}

# Small Fashion-MNIST look-alike: 10 train and 4 test images of 28x28 in gzip'ed IDX.
python3 - "$TMP/src" <<'PY' || fail "generating IDX"
import gzip, os, struct, sys
d = sys.argv[1]; os.makedirs(d)
for prefix, n in (("train", 10), ("t10k", 4)):
    with gzip.open(f"{d}/{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">4BIII", 0, 0, 8, 3, n, 28, 28) + bytes((i * 7 + j) % 256 for i in range(n) for j in range(784)))
    with gzip.open(f"{d}/{prefix}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">4BI", 0, 0, 8, 1, n) + bytes(i % 10 for i in range(n)))
PY
expect_ok shard fashion-mnist --source "$TMP/src" --out "$TMP/fm" --shards 3
grep -q "train-00002-of-00003.h5: 3 samples" "$TMP/out" || { cat "$TMP/out"; fail "no progress line"; }
grep -q '"fashion-mnist"' "$TMP/fm/manifest.json" || fail "dataset name"
expect_ok shard verify "$TMP/fm"
[ "$(grep -c '^ok ' "$TMP/out")" = 6 ] || { cat "$TMP/out"; fail "expected 6 ok lines"; }
# The single-file layout: one <split>.h5 per split, marked in the manifest.
expect_ok shard fashion-mnist --source "$TMP/src" --out "$TMP/fm1" --layout single-file
grep -q "split 'train' with 10 samples in one file" "$TMP/out" || { cat "$TMP/out"; fail "no single-file line"; }
[ "$(grep -c '"layout": "single-file"' "$TMP/fm1/manifest.json")" = 2 ] || fail "layout key"
[ -f "$TMP/fm1/train.h5" ] && [ -f "$TMP/fm1/test.h5" ] || fail "single-file names"
[ -z "$(ls "$TMP/fm1" | grep -- '-of-')" ] || fail "single-file layout wrote shards"
expect_ok shard verify "$TMP/fm1"
[ "$(grep -c '^ok .*\(train\|test\)\.h5' "$TMP/out")" = 2 ] || { cat "$TMP/out"; fail "expected 2 ok lines"; }
# bench io reads the same batches from both layouts: a cold and a warm line per method.
expect_ok bench io --shards "$TMP/fm" --single "$TMP/fm1" --batch 2 --repeats 1
for m in plain shards-mmap shards-pread single-coll single-h5; do
  [ "$(grep -c "^  $m  *\(cold\|warm\) " "$TMP/out")" = 2 ] || { cat "$TMP/out"; fail "bench io: no cold and warm lines for $m"; }
done
expect_error "is not in the single-file layout" bench io --shards "$TMP/fm" --single "$TMP/fm" --batch 2
# Back to shards: the single files go, nothing else does.
expect_ok shard fashion-mnist --source "$TMP/src" --out "$TMP/fm1" --shards 2
[ ! -e "$TMP/fm1/train.h5" ] && [ -f "$TMP/fm1/train-00001-of-00002.h5" ] || fail "re-sharding a single-file split"
expect_error "--layout" shard fashion-mnist --source "$TMP/src" --out "$TMP/fm7" --layout striped
expect_error "4 samples into 5 shards" shard fashion-mnist --source "$TMP/src" --out "$TMP/fm5" --shards 5
expect_error "no such file" shard fashion-mnist --source "$TMP/nowhere" --out "$TMP/fm6"

# CSV with a header and the label last; then a test split from a second file.
printf 'a,b,c,label\n0.5,1,2,0\n1,2,3,1\n2,3,4,2\n3,4,5,1\n' > "$TMP/train.csv"
printf '9,9,9,2\n8,8,8,0\n' > "$TMP/test.csv"
expect_ok shard csv --file "$TMP/train.csv" --label-column -1 --split train --classes 3 --out "$TMP/csv" --shards 2
expect_ok shard csv --file "$TMP/test.csv" --label-column -1 --no-header --split test --classes 3 --out "$TMP/csv" --shards 1
expect_ok shard verify "$TMP/csv"
[ "$(grep -c '^ok ' "$TMP/out")" = 3 ] || { cat "$TMP/out"; fail "expected 3 ok lines"; }
expect_error "class count is 3" shard csv --file "$TMP/test.csv" --label-column -1 --split val --classes 4 --out "$TMP/csv" --shards 1
printf '1,2,3,7\n' > "$TMP/bad.csv"
expect_error "bad.csv: label 7 of sample 0" shard csv --file "$TMP/bad.csv" --label-column -1 --split x --classes 3 --out "$TMP/bad" --shards 1

# raw: 3 samples of 2x2 float32, int32 labels.
python3 -c "
import struct, sys
open(sys.argv[1], 'wb').write(struct.pack('<12f', *range(12)))
open(sys.argv[2], 'wb').write(struct.pack('<3i', 1, 0, 1))" "$TMP/x.bin" "$TMP/y.bin"
expect_ok shard raw --features "$TMP/x.bin" --labels "$TMP/y.bin" --num-features 4 --feature-shape 2,2 --label-dtype int32 --split train --classes 2 --out "$TMP/raw" --shards 3
grep -q '"feature_shape": \[' "$TMP/raw/manifest.json" || fail "manifest"
expect_ok shard verify "$TMP/raw"
expect_error "uint8 or int32\|label-dtype" shard raw --features "$TMP/x.bin" --labels "$TMP/y.bin" --num-features 4 --label-dtype int64 --split train --classes 2 --out "$TMP/raw2" --shards 1

# npy written by hand (float32 features (2,3), int64 labels).
python3 - "$TMP" <<'PY' || fail "generating npy"
import struct, sys
def npy(path, descr, shape, payload):
    h = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
    open(path, "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + payload)
npy(sys.argv[1] + "/x.npy", "<f4", "(2, 3)", struct.pack("<6f", 1, 2, 3, 4, 5, 6))
npy(sys.argv[1] + "/y.npy", "<i8", "(2,)", struct.pack("<2q", 1, 0))
PY
expect_ok shard npy --features "$TMP/x.npy" --labels "$TMP/y.npy" --split train --classes 2 --out "$TMP/npy" --shards 2 --name tiny
grep -q '"tiny"' "$TMP/npy/manifest.json" || fail "--name"
expect_ok shard verify "$TMP/npy"

# Sharding into an existing directory deletes only old shards of the split it
# replaces: not manifest.json, not a user's file that a (hand-edited) manifest
# lists, not files that the manifest never listed.
echo "my notes" > "$TMP/npy/notes.txt"
echo "not listed" > "$TMP/npy/train-00007-of-00009.h5"
python3 - "$TMP/npy/manifest.json" <<'PY' || fail "editing the manifest"
import json, os, sys
m = json.load(open(sys.argv[1]))
old = m["splits"]["train"]["shards"][1]["file"]
os.rename(os.path.join(os.path.dirname(sys.argv[1]), old), os.path.join(os.path.dirname(sys.argv[1]), "old-shard.h5"))
m["splits"]["train"]["shards"][1]["file"] = "notes.txt"
json.dump(m, open(sys.argv[1], "w"))
PY
expect_ok shard npy --features "$TMP/x.npy" --labels "$TMP/y.npy" --split train --classes 2 --out "$TMP/npy" --shards 1 --name tiny
for f in manifest.json notes.txt old-shard.h5 train-00007-of-00009.h5 train-00000-of-00001.h5; do
  [ -f "$TMP/npy/$f" ] || fail "re-sharding removed $f"
done
[ ! -e "$TMP/npy/train-00000-of-00002.h5" ] || fail "the old shard train-00000-of-00002.h5 was kept"
grep -q "my notes" "$TMP/npy/notes.txt" || fail "notes.txt changed"
expect_ok shard verify "$TMP/npy"
# A manifest that lists itself or a path outside the directory is refused; nothing is deleted.
python3 -c "
import json, sys
m = json.load(open(sys.argv[1]))
m['splits']['train']['shards'][0]['file'] = '../x.h5'
json.dump(m, open(sys.argv[1], 'w'))" "$TMP/npy/manifest.json"
expect_error "path separator" shard npy --features "$TMP/x.npy" --labels "$TMP/y.npy" --split train --classes 2 --out "$TMP/npy" --shards 2 --name tiny
[ -f "$TMP/npy/manifest.json" ] && [ -f "$TMP/npy/train-00000-of-00001.h5" ] || fail "a refused run deleted files"

# verify notices a corrupted shard (bytes changed mid-file, inside the features) and exits 1.
f="$TMP/fm/train-00001-of-00003.h5"
size=$(stat -c %s "$f")
printf '\x55\x66\x77\x88' | dd of="$f" bs=1 seek=$((size / 2)) conv=notrunc status=none
expect_error "FAIL.*train-00001-of-00003.h5" shard verify "$TMP/fm"
grep -q "1 failed" "$TMP/out" || { cat "$TMP/out"; fail "summary"; }
expect_error "manifest.json: missing" shard verify "$TMP"
echo "all hpcml shard checks passed"
