#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: install what is missing,
# build, start a local single-node Slurm for the slurm-labelled tests, run CTest,
# stop Slurm. Extra arguments go to ctest (e.g. -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh -DHPCML_WERROR=ON
slurm_started=0
if [ -x scripts/slurm-local.sh ] || [ -f scripts/slurm-local.sh ]; then
  if bash scripts/slurm-local.sh start; then
    slurm_started=1
  else
    echo "test.sh: local Slurm did not start; slurm-labelled tests will report it" >&2
  fi
fi
cleanup() { if [ "$slurm_started" = 1 ]; then bash scripts/slurm-local.sh stop || true; fi; }
trap cleanup EXIT
ctest --test-dir "${HPCML_BUILD_DIR:-build}" --output-on-failure --timeout 600 -j "$(nproc)" "$@"
