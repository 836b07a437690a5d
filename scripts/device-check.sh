#!/usr/bin/env bash
# The prepared GPU check (docs/gpu.md). Two steps, on two machines:
#
#   1. Here, on a machine with the full build (MPICH, HDF5, nvcc):
#        scripts/device-check.sh --bundle device-bundle [BUILD_DIR]
#      packs the gpu tests and the GPU benchmark, which link no MPI or HDF5,
#      (bin/) and every shared library they need that a CUDA machine may lack
#      (OpenBLAS, libgomp, Kokkos, the CUDA runtime, ...; lib/) into
#      device-bundle/bundle.tgz (about 20 MB; the device tool carries at most
#      64 MiB with the working tree). cuBLAS is not packed (hundreds of MB): the
#      GPU machine's CUDA toolkit (or its pip nvidia-cublas wheel) provides it.
#   2. On the GPU machine (CUDA 13, no MPICH, no HDF5, no network):
#        scripts/device-check.sh --run device-bundle
#      checks that every library resolves (ldd), runs the gpu tests, the
#      training benchmark (cuda fp32/tf32/bf16/fp16 against omp) and the device
#      all-reduce test when the bundle has one, each under `timeout`, all within
#      8 minutes, and writes everything to one file: $OUT/device-check.txt when
#      OUT is set, else ./device-check.txt.
#
# Building on the GPU machine instead is not supported: it has none of
# hpcml's other dependencies either (toml11, CLI11, OpenBLAS, GoogleTest).
# Exit status: 0 all passed; 1 a step failed; 2 no GPU / bad usage; 3 a library is missing.
set -uo pipefail

usage() {
  echo "usage: $0 --bundle DIR [BUILD_DIR] | --run DIR" >&2
  exit 2
}
[[ $# -ge 2 ]] || usage
mode=$1
dir=$2
here=$(cd "$(dirname "$0")/.." && pwd)

# Binaries that go to the GPU machine (relative to the build directory).
BINARIES=(tests/gpu/gpu_cuda_backend_test tests/gpu/gpu_cuda_trainer_test tests/gpu/gpu_cuda_unit_test kernels/kernels_gpu_bench)
# Optional: the device all-reduce test of the NCCL transport, when built.
OPTIONAL_BINARIES=(tests/comm/comm_nccl_test tests/comm/comm_device_codec_test)
# Libraries the GPU machine has in its base system or its CUDA driver/toolkit.
SYSTEM_LIBS='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libgcc_s\.|libstdc\+\+\.|libcuda\.|libcublas\.|libcublasLt\.|libnccl\.|libnvidia-)'

bundle() {
  local build=${3:-$here/build}
  [[ -d $build ]] || { echo "device-check: no build directory $build" >&2; exit 2; }
  local out=$dir
  rm -rf "$out"
  mkdir -p "$out"
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  mkdir -p "$dir/bin" "$dir/lib"
  local b found=()
  for b in "${BINARIES[@]}"; do
    [[ -x $build/$b ]] || { echo "device-check: $build/$b is not built (cmake --build $build --target $(basename "$b"))" >&2; exit 2; }
    found+=("$build/$b")
  done
  for b in "${OPTIONAL_BINARIES[@]}"; do [[ -x $build/$b ]] && found+=("$build/$b"); done
  for b in "${found[@]}"; do
    cp "$b" "$dir/bin/"
    # name => path for every resolved library; unresolved ones are an error here already.
    if ldd "$b" | grep -q "not found"; then
      echo "device-check: $b has unresolved libraries here:" >&2
      ldd "$b" | grep "not found" >&2
      exit 3
    fi
    ldd "$b" | awk '/=>/ {print $1, $3}' | while read -r name path; do
      [[ $name =~ $SYSTEM_LIBS ]] && continue
      [[ -e $dir/lib/$name ]] || cp -L "$path" "$dir/lib/$name"
    done
  done
  {
    echo "bundled $(date -u +%FT%TZ) from $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "host: $(uname -srm), $(ldd --version | head -1)"
    ls -l "$dir/bin" "$dir/lib"
  } >"$dir/MANIFEST"
  cp "$dir/MANIFEST" "$out/MANIFEST"
  tar czf "$out/bundle.tgz" -C "$dir" bin lib MANIFEST
  echo "device-check: bundle in $out ($(du -sh "$out" | cut -f1)); on the GPU machine run: scripts/device-check.sh --run $out"
}

run_checks() {
  local results=${OUT:+$OUT/device-check.txt}
  results=${results:-$PWD/device-check.txt}
  local start=$SECONDS failed=0
  exec > >(tee "$results") 2>&1
  echo "== device-check $(date -u +%FT%TZ) on $(hostname)"
  if [[ -f $dir/bundle.tgz ]]; then
    local unpacked
    unpacked=$(mktemp -d)
    tar xzf "$dir/bundle.tgz" -C "$unpacked" || { echo "device-check: cannot unpack $dir/bundle.tgz"; exit 2; }
    dir=$unpacked
  fi
  [[ -d $dir/bin ]] || { echo "device-check: $dir/bin missing: make the bundle first (--bundle)"; exit 2; }
  [[ -f $dir/MANIFEST ]] && head -2 "$dir/MANIFEST"
  if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "device-check: no NVIDIA GPU visible (nvidia-smi -L failed or is missing): nothing to check"
    exit 2
  fi
  nvidia-smi -L
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
  command -v nvcc >/dev/null && nvcc --version | tail -1

  # cuBLAS from the toolkit, else from the Python wheel nvidia-cublas.
  local libpath=$dir/lib
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [[ -d $d ]] && libpath+=:$d
  done
  local wheel
  wheel=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null)
  [[ -n $wheel && -d $wheel ]] && libpath+=:$wheel
  # NCCL (218 MB, not bundled) likewise: the toolkit's, else the nvidia-nccl wheel.
  wheel=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null)
  [[ -n $wheel && -d $wheel ]] && libpath+=:$wheel
  export LD_LIBRARY_PATH=$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"

  local b missing=0
  # The NCCL test is optional: without a libnccl on this machine it is left out.
  if [[ -x $dir/bin/comm_nccl_test ]] && ldd "$dir/bin/comm_nccl_test" | grep -q "libnccl.*not found"; then
    echo "device-check: no libnccl on this machine (toolkit or nvidia-nccl wheel): the NCCL test is skipped"
    mv "$dir/bin/comm_nccl_test" "$dir/comm_nccl_test.no-libnccl"
  fi
  for b in "$dir"/bin/*; do
    if ldd "$b" | grep -q "not found"; then
      echo "device-check: $(basename "$b") cannot start, libraries missing:"
      ldd "$b" | grep "not found"
      missing=1
    fi
  done
  [[ $missing == 0 ]] || exit 3

  step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    echo
    echo "== $name (timeout ${limit}s)"
    local t0=$SECONDS
    timeout -k 5 "$limit" "$@"
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - t0)) s"
    [[ $rc == 0 ]] || failed=1
  }
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
  export HPCML_REQUIRE_GPU=1  # a gpu test that would skip for want of a device fails here
  step "gpu unit tests" 60 "$dir/bin/gpu_cuda_unit_test"
  step "gpu tests (cuda against reference)" 120 "$dir/bin/gpu_cuda_backend_test"
  step "gpu tests (core's trainer on cuda)" 60 "$dir/bin/gpu_cuda_trainer_test"
  step "training benchmark (cuda vs omp)" 180 "$dir/bin/kernels_gpu_bench" --omp-threads "$OMP_NUM_THREADS"
  [[ -x $dir/bin/comm_device_codec_test ]] && step "device fp16/bf16 codecs against the host codec" 60 "$dir/bin/comm_device_codec_test"
  if [[ -x $dir/bin/comm_nccl_test ]]; then
    step "device all-reduce (NCCL, 1 rank)" 60 "$dir/bin/comm_nccl_test"
  else
    echo
    echo "== device all-reduce: not in this bundle (no NCCL transport test was built)"
  fi
  echo
  echo "== device-check: $([[ $failed == 0 ]] && echo PASSED || echo FAILED) in $((SECONDS - start)) s; results in $results"
  exit $failed
}

case $mode in
  --bundle) bundle "$@" ;;
  --run) run_checks ;;
  *) usage ;;
esac
