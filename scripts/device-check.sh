#!/usr/bin/env bash
# The prepared GPU check (docs/gpu.md, "The prepared device check"). Two steps,
# on two machines, and a self-test of the first here:
#
#   1. Here, on a machine with the full build (MPICH, HDF5, nvcc):
#        scripts/device-check.sh --bundle device-bundle [BUILD_DIR]
#      packs the gpu tests, the GPU benchmark and the NCCL test (bin/) and every
#      shared library they need that a CUDA machine may lack (OpenBLAS, libgomp,
#      Kokkos, the CUDA runtime, MPICH for the NCCL test's one-rank MPI, ...;
#      lib/) into device-bundle/bundle.tgz. The device tool carries at most
#      64 MiB with the working tree: the bundle stays under 48 MiB or --bundle
#      fails. cuBLAS and NCCL are not packed (hundreds of MB): the GPU
#      machine's CUDA toolkit or its pip wheels provide them.
#   2. On the GPU machine (CUDA 13, no MPICH, no HDF5, no network):
#        scripts/device-check.sh --run device-bundle [--budget SECONDS]
#      says where cuBLAS/NCCL/the CUDA runtime come from, checks that every
#      library resolves, then runs the gpu tests, the training benchmark and
#      the device all-reduce, each section under its own timeout and all inside
#      the budget (default 420 s), appending to $OUT/device-check.txt (else
#      ./device-check.txt) as it goes, so a kill loses nothing written before.
#   S. Here: scripts/device-check.sh --selftest [BUNDLE_DIR] [BUILD_DIR]
#      proves the bundle starts on a machine without MPICH, HDF5 or the CUDA
#      toolkit: in a private mount namespace (root, or an unprivileged user
#      namespace) each binary runs in a chroot holding only the C/C++ runtime,
#      the bundle, and cuBLAS/NCCL (as the GPU machine's toolkit would provide
#      them), with LD_BIND_NOW=1 so every symbol resolves at start.
#
# Building on the GPU machine instead is not supported: it has none of
# hpcml's other dependencies either (toml11, CLI11, OpenBLAS, GoogleTest).
# Exit status: 0 all passed; 1 a step failed; 2 no GPU / bad usage; 3 a library
# is missing; 77 (--selftest) no way to make a mount namespace here.
set -uo pipefail

usage() {
  echo "usage: $0 --bundle DIR [BUILD_DIR] | --run DIR [--budget SECONDS] | --selftest [BUNDLE_DIR] [BUILD_DIR]" >&2
  exit 2
}
[[ $# -ge 1 ]] || usage
mode=$1
shift
here=$(cd "$(dirname "$0")/.." && pwd)

# Binaries that go to the GPU machine (relative to the build directory).
BINARIES=(tests/gpu/gpu_cuda_backend_test tests/gpu/gpu_cuda_trainer_test tests/gpu/gpu_cuda_unit_test kernels/kernels_gpu_bench)
# Optional: the device all-reduce test of the NCCL transport, when built.
OPTIONAL_BINARIES=(tests/comm/comm_nccl_test tests/comm/comm_device_codec_test)
# Libraries the GPU machine has in its base system (the C/C++ runtime) or in
# its CUDA driver (libcuda, libnvidia-*) and toolkit (cuBLAS, NCCL).
SYSTEM_LIBS='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libgcc_s\.|libstdc\+\+\.|libcuda\.|libcublas\.|libcublasLt\.|libnccl\.|libnvidia-)'
TOOLKIT_LIBS='^(libcublas\.|libcublasLt\.|libnccl\.)'
MAX_BUNDLE_MB=48

# ---- --bundle ------------------------------------------------------------------
bundle() {
  local out=${1:-}
  local build=${2:-$here/build}
  [[ -n $out ]] || usage
  [[ -d $build ]] || { echo "device-check: no build directory $build" >&2; exit 2; }
  rm -rf "$out"
  mkdir -p "$out"
  stage=$(mktemp -d)  # global: the EXIT trap runs after this function returned
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/bin" "$stage/lib" "$stage/fallback"
  local b found=()
  for b in "${BINARIES[@]}"; do
    [[ -x $build/$b ]] || { echo "device-check: $build/$b is not built (cmake --build $build --target $(basename "$b"))" >&2; exit 2; }
    found+=("$build/$b")
  done
  for b in "${OPTIONAL_BINARIES[@]}"; do [[ -x $build/$b ]] && found+=("$build/$b"); done
  for b in "${found[@]}"; do
    cp "$b" "$stage/bin/"
    # name => path for every resolved library; unresolved ones are an error here already.
    if ldd "$b" | grep -q "not found"; then
      echo "device-check: $b has unresolved libraries here:" >&2
      ldd "$b" | grep "not found" >&2
      exit 3
    fi
    ldd "$b" | awk '/=>/ {print $1, $3}' | while read -r name path; do
      # The C++ runtime, for a GPU machine whose own is older than this build's.
      if [[ $name =~ ^(libstdc\+\+\.|libgcc_s\.) ]]; then
        [[ -e $stage/fallback/$name ]] || cp -L "$path" "$stage/fallback/$name"
      fi
      [[ $name =~ $SYSTEM_LIBS ]] && continue
      [[ -e $stage/lib/$name ]] || cp -L "$path" "$stage/lib/$name"
    done
  done
  # Debug sections are dead weight on the GPU machine.
  strip --strip-debug "$stage"/lib/* "$stage"/fallback/* 2>/dev/null
  # The newest glibc and libstdc++ symbol versions anything in the bundle uses.
  local need_glibc need_cxx
  need_glibc=$(objdump -T "$stage"/bin/* "$stage"/lib/* 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
  need_cxx=$(objdump -T "$stage"/bin/* "$stage"/lib/* 2>/dev/null | grep -o 'GLIBCXX_[0-9.]*' | sort -uV | tail -1)
  {
    echo "bundled $(date -u +%FT%TZ) from $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "host: $(uname -srm), $(ldd --version | head -1)"
    echo "expects from the GPU machine: the NVIDIA driver (libcuda.so.1), libcublas.so.13 and"
    echo "libcublasLt.so.13 (CUDA toolkit or pip nvidia-cublas), libnccl.so.2 for comm_nccl_test"
    echo "(toolkit or pip nvidia-nccl-cu13; the test is skipped without it), glibc with ${need_glibc:-?}"
    echo "(glibc >= ${need_glibc#GLIBC_}), and libstdc++ with ${need_cxx:-?}, else fallback/ has this build's"
    ls -l "$stage/bin" "$stage/lib" "$stage/fallback"
  } >"$stage/MANIFEST"
  cp "$stage/MANIFEST" "$out/MANIFEST"
  tar czf "$out/bundle.tgz" -C "$stage" bin lib fallback MANIFEST
  local mb=$(( ($(stat -c %s "$out/bundle.tgz") + (1 << 20) - 1) >> 20 ))
  if (( mb > MAX_BUNDLE_MB )); then
    echo "device-check: $out/bundle.tgz is $mb MiB, over the $MAX_BUNDLE_MB MiB that leaves room in the device tool's 64 MiB carry" >&2
    exit 1
  fi
  echo "device-check: bundle in $out (bundle.tgz $mb MiB, $(du -sh "$stage" | cut -f1) unpacked); on the GPU machine run: scripts/device-check.sh --run $out"
}

# ---- where cuBLAS / NCCL / the CUDA runtime come from on the GPU machine ---------
# Prints the directories (one a line) that hold a toolkit library, in lookup order:
# $CUDA_HOME / $CUDA_PATH, /usr/local/cuda and every /usr/local/cuda-*, each in
# lib64, lib and targets/x86_64-linux/lib; then Python's site-packages nvidia/*/lib
# (CUDA 13 wheels: nvidia/cu13/lib for cuBLAS, nvidia/nccl/lib for NCCL).
toolkit_dirs() {
  local roots=() r d
  [[ -n ${CUDA_HOME:-} ]] && roots+=("$CUDA_HOME")
  [[ -n ${CUDA_PATH:-} ]] && roots+=("$CUDA_PATH")
  roots+=(/usr/local/cuda)
  for r in /usr/local/cuda-*; do [[ -d $r ]] && roots+=("$r"); done
  local cands=()
  for r in "${roots[@]}"; do
    cands+=("$r/lib64" "$r/lib" "$r/targets/x86_64-linux/lib")
  done
  local sp
  while read -r sp; do
    [[ -d $sp/nvidia ]] || continue
    for d in "$sp"/nvidia/*/lib; do cands+=("$d"); done
  done < <(python3 -c 'import site, sys
for p in site.getsitepackages() + [site.getusersitepackages()] + sys.path: print(p)' 2>/dev/null | awk '!seen[$0]++')
  local seen=" "
  for d in "${cands[@]}"; do
    [[ -d $d ]] || continue
    d=$(readlink -f "$d")
    [[ $seen == *" $d "* ]] && continue
    seen+="$d "
    compgen -G "$d/libcublas.so*" >/dev/null || compgen -G "$d/libnccl.so*" >/dev/null ||
      compgen -G "$d/libcublasLt.so*" >/dev/null || continue
    echo "$d"
  done
}

# "name => path" of the libraries a binary resolves, for the ones that matter here.
report_libs() {
  ldd "$1" 2>/dev/null | awk '/libcublas|libcublasLt|libnccl|libcudart|libcuda\.|libmpi|libhdf5/ {print "    " $1, $2, $3}'
}

# ---- --run -----------------------------------------------------------------------
run_checks() {
  local dir=${1:-}
  [[ -n $dir ]] || usage
  shift
  local budget=${HPCML_DEVICE_CHECK_BUDGET:-420}
  while [[ $# -gt 0 ]]; do
    case $1 in
      --budget) budget=${2:?}; shift 2 ;;
      *) usage ;;
    esac
  done
  local results=${OUT:+$OUT/device-check.txt}
  results=${results:-$PWD/device-check.txt}
  : >"$results"
  local start=$SECONDS failed=0
  local -a summary=()
  # Everything goes to the terminal and is appended to the file line by line.
  say() { echo "$*" | tee -a "$results"; }
  sayc() { "$@" 2>&1 | tee -a "$results"; }
  say "== device-check $(date -u +%FT%TZ) on $(hostname), budget ${budget}s, results in $results"
  if [[ -f $dir/bundle.tgz ]]; then
    unpacked=$(mktemp -d)  # global: removed by the EXIT trap
    trap 'rm -rf "$unpacked"' EXIT
    tar xzf "$dir/bundle.tgz" -C "$unpacked" || { say "device-check: cannot unpack $dir/bundle.tgz"; exit 2; }
    dir=$unpacked
  fi
  [[ -d $dir/bin ]] || { say "device-check: $dir/bin missing: make the bundle first (--bundle)"; exit 2; }
  [[ -f $dir/MANIFEST ]] && sayc head -2 "$dir/MANIFEST"
  if command -v nvidia-smi >/dev/null; then
    if ! nvidia-smi -L >/dev/null 2>&1; then
      say "device-check: no NVIDIA GPU visible (nvidia-smi -L failed): nothing to check"
      sayc nvidia-smi -L
      exit 2
    fi
    sayc nvidia-smi -L
    sayc nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv,noheader
  else
    say "device-check: no nvidia-smi on PATH; going on (the gpu tests say whether a device is visible)"
  fi
  command -v nvcc >/dev/null && say "$(nvcc --version | tail -1)"

  # The bundle first, then every toolkit directory found, then what was set already.
  local libpath=$dir/lib d
  say "toolkit library directories found (cuBLAS, cuBLASLt, NCCL):"
  while read -r d; do
    libpath+=:$d
    say "    $d: $(cd "$d" && ls libcublas.so* libcublasLt.so* libnccl.so* 2>/dev/null | tr '\n' ' ')"
  done < <(toolkit_dirs)
  [[ $libpath == "$dir/lib" ]] && say "    none (looked in \$CUDA_HOME, \$CUDA_PATH, /usr/local/cuda*/{lib64,lib,targets/x86_64-linux/lib}, python site-packages nvidia/*/lib); the system's ld.so cache is the last resort"
  export LD_LIBRARY_PATH=$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  say "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"

  local b missing=0
  # A system libstdc++/libgcc_s older than this build's: the bundle's instead.
  if [[ -d $dir/fallback ]] && ldd "$dir"/bin/* 2>&1 | grep -qE "(GLIBCXX|CXXABI|GCC)_[0-9.]+' not found"; then
    export LD_LIBRARY_PATH=$dir/fallback:$LD_LIBRARY_PATH
    say "the system's libstdc++/libgcc_s are older than this build's: using the bundle's fallback/"
    say "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  fi
  # The NCCL test is optional: without a libnccl on this machine it is left out.
  if [[ -x $dir/bin/comm_nccl_test ]] && ldd "$dir/bin/comm_nccl_test" | grep -q "libnccl.*not found"; then
    say "device-check: no libnccl on this machine (toolkit or nvidia-nccl wheel): the NCCL test is skipped"
    mv "$dir/bin/comm_nccl_test" "$dir/comm_nccl_test.no-libnccl"
  fi
  for b in "$dir"/bin/*; do
    say "  $(basename "$b") resolves:"
    sayc report_libs "$b"
    if ldd "$b" | grep -q "not found"; then
      say "device-check: $(basename "$b") cannot start, libraries missing:"
      sayc bash -c "ldd '$b' | grep 'not found'"
      missing=1
    fi
  done
  [[ $missing == 0 ]] || exit 3

  # step NAME SECONDS SKIPS COMMAND...: its own timeout, never past the budget;
  # the output is line-buffered so a timeout keeps everything printed before
  # it. SKIPS=fail: a test that skipped fails the section (on the GPU machine a
  # skip means it did not run); SKIPS=ok for the unit tests, one of which is
  # for machines without a device and skips where there is one.
  step() {
    local name=$1 limit=$2 skips=$3
    shift 3
    local left=$((budget - (SECONDS - start) - 5))
    say ""
    if ((left < 10)); then
      say "== $name: not run, the ${budget}s budget is spent"
      summary+=("$(printf '%-46s %8s %6s' "$name" "skipped" "-")")
      failed=1
      return
    fi
    ((limit > left)) && limit=$left
    say "== $name (timeout ${limit}s)"
    local t0=$SECONDS section
    section=$(mktemp)
    timeout -k 5 "$limit" "${linebuf[@]}" "$@" 2>&1 | tee -a "$results" "$section"
    local rc=${PIPESTATUS[0]}
    local why=""
    [[ $rc == 124 || $rc == 137 ]] && why=" (timed out)"
    # On the GPU machine a skipped test is a test that did not run: say so.
    if [[ $rc == 0 && $skips == fail ]] && grep -q '^\[  SKIPPED \]' "$section"; then
      rc=1
      why=" (tests skipped: see above)"
    fi
    rm -f "$section"
    say "== $name: exit $rc$why after $((SECONDS - t0)) s"
    summary+=("$(printf '%-46s %8s %5ss' "$name" "exit $rc" "$((SECONDS - t0))")")
    [[ $rc == 0 ]] || failed=1
  }
  local linebuf=()
  command -v stdbuf >/dev/null && linebuf=(stdbuf -oL -eL)
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
  export HPCML_REQUIRE_GPU=1  # a gpu test that would skip for want of a device fails here
  step "gpu unit tests" 30 ok "$dir/bin/gpu_cuda_unit_test"
  step "gpu tests (cuda against reference)" 100 fail "$dir/bin/gpu_cuda_backend_test"
  step "gpu tests (core's trainer on cuda)" 60 fail "$dir/bin/gpu_cuda_trainer_test"
  step "training benchmark (cuda vs omp)" 150 fail "$dir/bin/kernels_gpu_bench" --omp-threads "$OMP_NUM_THREADS"
  if [[ -x $dir/bin/comm_device_codec_test ]]; then
    step "device fp16/bf16 codecs against the host codec" 30 fail "$dir/bin/comm_device_codec_test"
  fi
  if [[ -x $dir/bin/comm_nccl_test ]]; then
    step "device all-reduce (NCCL, 1 rank)" 45 fail "$dir/bin/comm_nccl_test"
  else
    say ""
    say "== device all-reduce: not in this bundle or no libnccl here"
  fi
  # Last, with whatever budget is left: the kernel tests under compute-sanitizer
  # (out-of-bounds and misaligned accesses; shared-memory races in the fixed
  # reduction trees), when the toolkit has it. The large and training tests
  # are left out: the sanitizer slows kernels 10-100x.
  local sanitizer
  sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
  local kernel_tests='CudaBackendTest.*-*MoreRowChunks*:*Training*:*SameSeed*:*Timing*'
  if [[ -n $sanitizer ]]; then
    step "memcheck (compute-sanitizer, kernel tests)" 90 fail "$sanitizer" --tool memcheck --error-exitcode 1 \
      "$dir/bin/gpu_cuda_backend_test" --gtest_filter="$kernel_tests"
    step "racecheck (compute-sanitizer, reductions)" 60 fail "$sanitizer" --tool racecheck --error-exitcode 1 \
      "$dir/bin/gpu_cuda_backend_test" --gtest_filter='*ElementwiseKernels*:*SoftmaxXent*:*OptimizerKernels*:*ColumnSumsOfTall*'
  else
    say ""
    say "== compute-sanitizer: not found (PATH, /usr/local/cuda*/bin): memcheck and racecheck not run"
  fi
  say ""
  say "== sections (name, exit, seconds):"
  local line
  for line in "${summary[@]}"; do say "   $line"; done
  say "== device-check: $([[ $failed == 0 ]] && echo PASSED || echo FAILED) in $((SECONDS - start)) s; results in $results"
  exit $failed
}

# ---- --selftest --------------------------------------------------------------------
# Inside `unshare -m` (as root) or `unshare -r -m` (user namespace): builds the
# chroot and runs every binary in it. Called by selftest() as `--selftest-inner`.
selftest_inner() {
  local unpacked=$1 root=$2
  set -e
  mkdir -p "$root/bundle" "$root/runtime" "$root/toolkit" "$root/lib64" "$root/tmp" \
    "$root/proc" "$root/sys" "$root/dev"
  mount --bind "$unpacked" "$root/bundle"
  # Not libraries, but what any machine has (MPI_Init and hwloc read them).
  local fs
  for fs in proc sys dev; do mount --rbind "/$fs" "$root/$fs"; done
  local b name path
  for b in "$unpacked"/bin/*; do
    while read -r name path; do
      [[ -n $path && -e $path ]] || continue
      if [[ $name =~ $TOOLKIT_LIBS ]]; then
        # As the GPU machine's toolkit provides it (bind: no copy of 500 MB).
        [[ -e $root/toolkit/$name ]] || { touch "$root/toolkit/$name"; mount --bind "$(readlink -f "$path")" "$root/toolkit/$name"; }
      elif [[ $name =~ $SYSTEM_LIBS && ! $name =~ ^(libcuda\.|libnvidia-) ]]; then
        [[ -e $root/runtime/$name ]] || cp -L "$path" "$root/runtime/$name"
      fi
    done < <(ldd "$b" | awk '/=>/ {print $1, $3}')
  done
  cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
  set +e
  # env runs outside, chroot execs the binary inside (the chroot has no env).
  local chroot_bin
  chroot_bin=$(command -v chroot)
  local env=(env -i PATH=/bundle/bin LD_LIBRARY_PATH=/bundle/lib:/toolkit:/runtime LD_BIND_NOW=1 HOME=/tmp TMPDIR=/tmp)
  local rc fails=0 out
  echo "chroot: runtime/ (the C/C++ runtime: $(ls "$root/runtime" | tr '\n' ' ')), toolkit/ ($(ls "$root/toolkit" | tr '\n' ' ')), bundle/, lib64/ld-linux, and /proc /sys /dev"
  for b in "$unpacked"/bin/*; do
    name=$(basename "$b")
    case $name in
      kernels_gpu_bench) out=$("${env[@]}" "$chroot_bin" "$root" "/bundle/bin/$name" --no-such-option 2>&1); rc=$?
        [[ $rc == 2 && $out == *usage:* ]] && rc=0 ;;
      # The tests run: without a device they skip (comm_nccl_test: MPI_Init
      # as a singleton first, as on the GPU machine, which has no mpiexec).
      *) out=$("${env[@]}" "$chroot_bin" "$root" "/bundle/bin/$name" 2>&1); rc=$? ;;
    esac
    if [[ $rc == 0 ]]; then
      echo "  ok    $name starts and runs$(grep -o '\[  PASSED  \] [0-9]* tests\?' <<<"$out" | sed 's/^/: /')$(grep -o '\[  SKIPPED \] [0-9]* tests\?' <<<"$out" | sed 's/^/, /' | head -1)"
    else
      echo "  FAIL  $name (exit $rc):"
      sed 's/^/        /' <<<"$out" | head -20
      fails=1
    fi
  done
  # The check can fail: without the bundle's lib/ the first binary must not start.
  name=gpu_cuda_unit_test
  if env -i LD_LIBRARY_PATH=/toolkit:/runtime LD_BIND_NOW=1 "$chroot_bin" "$root" "/bundle/bin/$name" --gtest_list_tests >/dev/null 2>&1; then
    echo "  FAIL  control: $name started without the bundle's lib/ (the chroot is not minimal)"
    fails=1
  else
    echo "  ok    control: $name does not start without the bundle's lib/"
  fi
  return $fails
}

selftest() {
  local bundle_dir=${1:-} build=${2:-$here/build}
  work=$(mktemp -d)  # global, as stage in bundle()
  trap 'rm -rf --one-file-system "$work"' EXIT
  if [[ -z $bundle_dir ]]; then
    bundle_dir=$work/bundle
    bash "$0" --bundle "$bundle_dir" "$build" || exit 1
  fi
  [[ -f $bundle_dir/bundle.tgz ]] || { echo "device-check: no $bundle_dir/bundle.tgz" >&2; exit 2; }
  mkdir -p "$work/unpacked" "$work/root"
  tar xzf "$bundle_dir/bundle.tgz" -C "$work/unpacked"
  local ns
  if [[ $(id -u) == 0 ]] && unshare -m true 2>/dev/null; then
    ns=(unshare -m --propagation private)
  elif unshare -r -m true 2>/dev/null; then
    ns=(unshare -r -m --propagation private)
  else
    echo "device-check: --selftest needs a mount namespace (root, or unprivileged user namespaces): skipped"
    exit 77
  fi
  echo "device-check --selftest: bundle $bundle_dir ($(( ($(stat -c %s "$bundle_dir/bundle.tgz") + (1 << 20) - 1) >> 20 )) MiB), namespace: ${ns[*]}"
  "${ns[@]}" bash "$0" --selftest-inner "$work/unpacked" "$work/root"
  local rc=$?
  echo "device-check --selftest: $([[ $rc == 0 ]] && echo PASSED || echo FAILED)"
  return $rc
}

case $mode in
  --bundle) bundle "$@" ;;
  --run) run_checks "$@" ;;
  --selftest) selftest "$@"; exit $? ;;
  --selftest-inner) selftest_inner "$@"; exit $? ;;
  *) usage ;;
esac
