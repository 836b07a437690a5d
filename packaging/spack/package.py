# Spack recipe for hpcml. Not part of Spack's builtin repository: put it in a repo
# of your own (see docs/install.md), as packages/hpcml/package.py.
#
# Written for Spack v1.0 and later (package API v2: build systems are imported
# from spack_repo.builtin). For an older Spack (0.2x), delete the two
# `from spack_repo...` lines; the rest is the same.
#
# Not tested here: the project's machines have no Spack. The CMake side it drives
# (options, HPCML_HDF5_PKGCONFIG, the install tree) is tested by CTest
# (install_consumer).

from spack_repo.builtin.build_systems.cmake import CMakePackage
from spack_repo.builtin.build_systems.cuda import CudaPackage

from spack.package import *


class Hpcml(CMakePackage, CudaPackage):
    """Data-parallel training of small ML models on MPI clusters and Slurm:
    sharded parallel-HDF5 datasets, synchronous data-parallel SGD over MPI,
    OpenMP and OpenBLAS kernels inside each rank, Slurm batch scripts and
    sweeps, and scaling studies (Amdahl, Gustafson, Karp-Flatt, alpha-beta)."""

    # hpcml has no public release, home page or repository address yet, and no
    # license file. Point `git` at your clone (a file:// URL works), or build a
    # checkout in place with `spack develop hpcml@main` (see docs/install.md).
    git = "file:///path/to/hpcml"

    version("main", branch="main")

    variant("openmp", default=True, description="OpenMP threads inside each rank (omp backend)")
    variant(
        "slurm",
        default=True,
        description="Submit jobs through libslurm's C API (without it: through sbatch)",
    )
    variant("nccl", default=False, description="NCCL all-reduce transport (parallel.transport = nccl)")
    variant(
        "kokkos",
        default=False,
        description="Kokkos kernel backend (parallel.backend = kokkos; GEMM through Kokkos Kernels)",
    )
    # `cuda` and `cuda_arch` come from CudaPackage.

    # +cuda: the cuda backend (cuBLAS; docs/gpu.md); +nccl: the NCCL transport.
    # Both compile and link in hpcml's CI but have not yet run on a GPU there.
    conflicts("+nccl", when="~cuda", msg="NCCL needs +cuda")

    depends_on("c", type="build")
    depends_on("cxx", type="build")
    conflicts("%gcc@:11", msg="hpcml needs C++20 (GCC 12 or newer; tested with GCC 12.2)")

    depends_on("cmake@3.25:", type="build")
    # The installed hpcmlConfig.cmake finds parallel HDF5 through pkg-config.
    depends_on("pkgconfig", type=("build", "run"))

    # Tested with MPICH 4.0; the code uses standard MPI only.
    depends_on("mpi")
    depends_on("hdf5@1.10:+mpi")
    # Not the virtual `blas`: hpcml calls OpenBLAS's own API (openblas_get_config,
    # openblas_set_num_threads) and looks for OpenBLAS by name.
    depends_on("openblas")
    depends_on("zlib-api")
    depends_on("toml11@3.7:3")
    depends_on("cli11@2.1:")
    depends_on("nlohmann-json@3.10:")
    depends_on("googletest@1.12:", type="test")

    # On a cluster, libslurm must match the running Slurm: declare the site's
    # Slurm as an external package rather than building one.
    depends_on("slurm", when="+slurm")

    with when("+cuda"):
        depends_on("cuda@12:")
        depends_on("nccl", when="+nccl")
    # hpcml runs Kokkos on its DefaultHostExecutionSpace (docs/kernels.md): a
    # kokkos+openmp gives threaded kernels; the trainer's buffers are host memory.
    depends_on("kokkos@3.4:", when="+kokkos")
    depends_on("kokkos-kernels@3.4:", when="+kokkos")

    def cmake_args(self):
        return [
            self.define("HPCML_BUILD_TESTS", self.run_tests),
            self.define("HPCML_WERROR", False),
            # Spack's hdf5 installs hdf5.pc; Debian's MPICH flavour is hdf5-mpich.
            self.define("HPCML_HDF5_PKGCONFIG", "hdf5"),
            self.define_from_variant("HPCML_ENABLE_OPENMP", "openmp"),
            self.define_from_variant("HPCML_ENABLE_SLURM", "slurm"),
            self.define_from_variant("HPCML_ENABLE_CUDA", "cuda"),
            self.define_from_variant("HPCML_ENABLE_NCCL", "nccl"),
            self.define_from_variant("HPCML_ENABLE_KOKKOS", "kokkos"),
        ] + (
            [self.define("Kokkos_ROOT", self.spec["kokkos"].prefix)]
            if self.spec.satisfies("+kokkos")
            else []
        ) + (
            [
                self.define(
                    "CMAKE_CUDA_ARCHITECTURES", ";".join(self.spec.variants["cuda_arch"].value)
                ),
                self.define("CMAKE_CUDA_COMPILER", self.spec["cuda"].prefix.bin.nvcc),
            ]
            if self.spec.satisfies("+cuda") and self.spec.variants["cuda_arch"].value[0] != "none"
            else []
        ) + (
            [self.define("NCCL_ROOT", self.spec["nccl"].prefix)]
            if self.spec.satisfies("+nccl")
            else []
        )

    def check(self):
        # `spack install --test=root hpcml`: the serial unit tests (the MPI and
        # Slurm tests need a launcher and a cluster, which a build sandbox lacks).
        with working_dir(self.build_directory):
            ctest("-L", "unit", "-LE", "slurm", "--output-on-failure")

    def test_info(self):
        """run `hpcml info` from the installed prefix"""
        hpcml = which(self.prefix.bin.hpcml)
        out = hpcml("info", output=str, error=str)
        assert out.startswith("hpcml "), out
