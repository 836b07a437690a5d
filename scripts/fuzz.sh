#!/usr/bin/env bash
# Fuzzing in CI: builds the libFuzzer targets of fuzz/ with clang
# (-fsanitize=fuzzer,address,undefined) into ${HPCML_FUZZ_BUILD_DIR:-build-fuzz}
# and runs each for ${HPCML_FUZZ_SECONDS:-20} s, starting from its seed corpus
# fuzz/corpus/<target>/ (read only; new inputs go to <build>/corpus/<target>/).
# A crash, a sanitizer report, an input slower than 10 s or an allocation over
# 2 GB fails the run; the reproducer is saved as <build>/artifacts/<target>-*
# (copy it into fuzz/corpus/<target>/ once the bug is fixed, so it stays tested).
# Targets listed in fuzz/known-crashes.txt (open bugs outside the fuzzed
# module's fix) are still run, but their crashes are reported, not failed on.
# Arguments: target names to run (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${HPCML_FUZZ_BUILD_DIR:-build-fuzz}
seconds=${HPCML_FUZZ_SECONDS:-20}
jobs=${HPCML_BUILD_JOBS:-$(nproc)}
cxx=${HPCML_FUZZ_CXX:-clang++}
cc=${HPCML_FUZZ_CC:-clang}
if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "fuzz.sh: $cxx not found (scripts/install-deps.sh installs clang)" >&2
  exit 1
fi
all=(fuzz_manifest fuzz_idx fuzz_npy fuzz_csv fuzz_report_csv fuzz_config)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
t0=$(date +%s)
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHPCML_FUZZ=ON \
  -DHPCML_BUILD_TESTS=OFF -DHPCML_WERROR=ON \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
  "${launcher[@]}" >/dev/null
cmake --build "$build_dir" -j "$jobs" --target "${targets[@]}"
t1=$(date +%s)

known() {  # prints the reason if $1 is listed in fuzz/known-crashes.txt
  [ -f fuzz/known-crashes.txt ] || return 1
  awk -v t="$1" '$1 == t { $1 = ""; sub(/^ /, ""); print; found = 1 } END { exit !found }' \
    fuzz/known-crashes.txt
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
mkdir -p "$build_dir/artifacts"
# The targets' scratch files (fuzz_util.hpp), removed even after a crash.
scratch_base=/tmp
[ -d /dev/shm ] && scratch_base=/dev/shm
HPCML_FUZZ_SCRATCH=$(mktemp -d "$scratch_base/hpcml-fuzz-run-XXXXXX")
export HPCML_FUZZ_SCRATCH
trap 'rm -rf "$HPCML_FUZZ_SCRATCH"' EXIT
for t in "${targets[@]}"; do
  work="$build_dir/corpus/$t"
  mkdir -p "$work" "fuzz/corpus/$t"
  log="$build_dir/$t.log"
  rc=0
  "$build_dir/fuzz/$t" "$work" "fuzz/corpus/$t" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build_dir/artifacts/$t-" >"$log" 2>&1 || rc=$?
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
  if [ "$rc" -eq 0 ]; then
    echo "fuzz.sh: $t: ok (${runs:-?} inputs in ${seconds} s)"
    continue
  fi
  artifact=$(grep -oE "Test unit written to [^ ]+" "$log" | tail -1 | sed 's/Test unit written to //' || true)
  summary=$(grep -m1 -E "^SUMMARY:|ERROR: libFuzzer|ERROR: AddressSanitizer|runtime error" "$log" || true)
  if reason=$(known "$t"); then
    echo "fuzz.sh: $t: KNOWN crash (fuzz/known-crashes.txt: $reason): ${summary:-exit $rc}; input ${artifact:-?}"
  else
    echo "fuzz.sh: $t: FAILED: ${summary:-exit $rc}; input ${artifact:-?}; log $log" >&2
    tail -40 "$log" >&2
    failed+=("$t")
  fi
done
t2=$(date +%s)
echo "fuzz.sh: build $((t1 - t0)) s, fuzzing $((t2 - t1)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: crashes in: ${failed[*]}" >&2
  exit 1
fi
