#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: install what is missing,
# build, start a local single-node Slurm for the slurm-labelled tests, run CTest,
# then the multi-node Slurm tests on a 2-node namespace cluster, stop Slurm;
# then the sanitizer run (scripts/sanitize.sh: ASan + UBSan build, unit tests)
# and the fuzz run (scripts/fuzz.sh: each libFuzzer target for a bounded time). Any failure of the three fails the whole run. Extra arguments
# go to the main ctest (e.g. -L unit). For local use, HPCML_SKIP_SANITIZE=1 and
# HPCML_SKIP_FUZZ=1 skip the last two (CI runs them). docs/testing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh -DHPCML_WERROR=ON
slurm_started=0
if [ -x scripts/slurm-local.sh ] || [ -f scripts/slurm-local.sh ]; then
  # A cluster of another size left running (start --nodes 2 by hand) would
  # refuse this start and leave the slurm tests on too few CPUs per node.
  if [ -f "${HPCML_SLURM_DIR:-${TMPDIR:-/tmp}/hpcml-slurm}/nodes" ] &&
    [ "$(cat "${HPCML_SLURM_DIR:-${TMPDIR:-/tmp}/hpcml-slurm}/nodes")" != 1 ]; then
    bash scripts/slurm-local.sh stop || true
  fi
  if bash scripts/slurm-local.sh start; then
    slurm_started=1
  else
    echo "test.sh: local Slurm did not start; slurm-labelled tests will report it" >&2
  fi
fi
cleanup() { if [ "$slurm_started" = 1 ]; then bash scripts/slurm-local.sh stop || true; fi; }
trap cleanup EXIT
rc=0
ctest --test-dir "${HPCML_BUILD_DIR:-build}" --output-on-failure --timeout 600 -j "$(nproc)" "$@" || rc=$?
# The multi-node Slurm tests skip on the 1-node cluster: run them again on a
# 2-node namespace cluster (docs/testing.md, "Multi-node"). Only without a
# test filter of the caller's, and only if the 1-node cluster ran.
if [ "$slurm_started" = 1 ] && [ $# -eq 0 ]; then
  bash scripts/slurm-local.sh stop || true
  slurm_started=0
  if bash scripts/slurm-local.sh start --nodes 2; then
    slurm_started=1
    ctest --test-dir "${HPCML_BUILD_DIR:-build}" --output-on-failure --timeout 600 \
      -R '^multinode_slurm_' || rc=1
  else
    echo "test.sh: the 2-node Slurm cluster did not start; the multinode_slurm tests ran skipped above" >&2
  fi
fi
if [ "${HPCML_SKIP_SANITIZE:-0}" = 1 ]; then
  echo "test.sh: sanitizer run skipped (HPCML_SKIP_SANITIZE=1)"
else
  bash scripts/sanitize.sh || rc=1
fi
if [ "${HPCML_SKIP_FUZZ:-0}" = 1 ]; then
  echo "test.sh: fuzz run skipped (HPCML_SKIP_FUZZ=1)"
else
  bash scripts/fuzz.sh || rc=1
fi
exit $rc
