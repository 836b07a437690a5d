#!/usr/bin/env bash
# Configures and builds hpcml into ${HPCML_BUILD_DIR:-build} (Release, tests on).
# Extra arguments go to cmake's configure step (e.g. -DHPCML_WERROR=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${HPCML_BUILD_DIR:-build}
jobs=${HPCML_BUILD_JOBS:-$(nproc)}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build_dir" -j "$jobs"
