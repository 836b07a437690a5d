# Sourced by the ps test scripts. Defines fail, make_dataset (from
# tests/faults/common.sh: 3 classes, 16 features, 4000 samples, 2 shards) and
# write_job (a small MLP job in ./job.toml), and `field FILE KEY` (a top-level
# key of a JSON file, or KEY.SUB one level down).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fail() { echo "FAIL: $*"; exit 1; }
source "$here/../faults/common.sh"
write_job() {
  cat > job.toml <<TOML
[data]
path = "data"
[model]
hidden = [32]
[train]
epochs = 2
batch_size = 16
[parallel]
threads = 1
[run]
dir = "runs"
progress = "never"
TOML
}
field() {
  python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v = v[k]
print(v)' "$1" "$2"
}
