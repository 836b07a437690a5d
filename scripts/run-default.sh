#!/usr/bin/env bash
# The main job on its embedded default, from a fresh Debian 12 machine:
# install what is missing, build, shard Fashion-MNIST to HDF5, train on 2 MPI ranks.
# Extra arguments are passed to `hpcml train` (e.g. --set train.epochs=2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh > build.log 2>&1 || { tail -50 build.log; echo "build failed, see build.log" >&2; exit 1; }
echo "built build/jobs/hpcml (log: build.log)"
hpcml=build/jobs/hpcml
if [ ! -f data/fashion-mnist/manifest.json ]; then
  "$hpcml" shard fashion-mnist --out data/fashion-mnist --shards 4
fi
# As many threads per rank as leave the cores to the 2 ranks without oversubscribing.
threads=$(( $(nproc) / 2 )); [ "$threads" -ge 1 ] || threads=1
exec mpiexec -n 2 "$hpcml" train configs/fashion_mnist_mlp.toml --set parallel.threads=$threads "$@"
