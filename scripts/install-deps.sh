#!/usr/bin/env bash
# The one list of Debian packages hpcml needs to build, run and test.
# Installs only what is missing (apt-get, as root). Safe to run repeatedly.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake pkg-config git clang-format
  # fuzzing (scripts/fuzz.sh): clang with libFuzzer and the sanitizer runtimes
  clang libclang-rt-14-dev
  # MPI + parallel HDF5
  mpich libmpich-dev libhdf5-mpich-dev hdf5-tools zlib1g-dev
  # BLAS, OpenMP runtime comes with g++
  libopenblas-dev
  # Kokkos (Trilinos 13.2: Kokkos 3.4, Serial space) and Kokkos Kernels: the kokkos backend
  libtrilinos-kokkos-dev libtrilinos-kokkos-kernels-dev
  # C++ libraries
  libtoml11-dev libcli11-dev nlohmann-json3-dev libgtest-dev googletest
  # data: the default job's dataset
  dataset-fashion-mnist
  # shard interoperability tests read shards with h5py
  python3 python3-h5py python3-numpy
  # scaling report: PNG plots from the hand-written SVG (rsvg-convert)
  librsvg2-bin
  # Slurm (local single-node cluster for the slurm-labelled tests) and libslurm
  slurm-wlm slurm-client slurmctld slurmd munge libslurm-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run this script as root (it uses apt-get)" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
