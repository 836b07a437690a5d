# Feature options. Each defaults to what this machine can build; an explicit ON
# that cannot be satisfied is an error, never a silent fallback.
include(CheckLanguage)

macro(hpcml_feature NAME DESCRIPTION DETECTED)
  if(DEFINED ${NAME})
    set(_hpcml_explicit_${NAME} TRUE)
  else()
    set(_hpcml_explicit_${NAME} FALSE)
  endif()
  option(${NAME} "${DESCRIPTION}" ${DETECTED})
endmacro()

find_package(OpenMP QUIET COMPONENTS CXX)
hpcml_feature(HPCML_ENABLE_OPENMP "OpenMP threads inside a rank" ${OpenMP_CXX_FOUND})
if(HPCML_ENABLE_OPENMP)
  find_package(OpenMP REQUIRED COMPONENTS CXX)
  set(HPCML_HAS_OPENMP 1)
endif()

# CUDA backend (kernels/cuda, docs/gpu.md): AUTO, ON or OFF.
include(HpcmlCuda)

# NCCL transport (parallel.transport = "nccl", docs/communication.md).
# AUTO: built when nccl.h, libnccl and the CUDA runtime are found (no GPU needed
# to build); ON: required; OFF: not looked for. NCCL_ROOT points at a site's NCCL.
if(DEFINED CACHE{HPCML_ENABLE_NCCL})
  # A build directory configured before the transport existed cached OFF from
  # the old placeholder option: start it at AUTO like a fresh one.
  get_property(_hpcml_nccl_help CACHE HPCML_ENABLE_NCCL PROPERTY HELPSTRING)
  if(_hpcml_nccl_help MATCHES "not implemented yet")
    unset(HPCML_ENABLE_NCCL CACHE)
  endif()
endif()
set(HPCML_ENABLE_NCCL AUTO CACHE STRING "NCCL transport: AUTO, ON or OFF")
set_property(CACHE HPCML_ENABLE_NCCL PROPERTY STRINGS AUTO ON OFF)
string(TOUPPER "${HPCML_ENABLE_NCCL}" _hpcml_nccl_mode)
if(_hpcml_nccl_mode MATCHES "^(ON|YES|TRUE|Y|1)$")
  set(_hpcml_nccl_mode ON)
elseif(_hpcml_nccl_mode MATCHES "^(OFF|NO|FALSE|N|0)$")
  set(_hpcml_nccl_mode OFF)
elseif(NOT _hpcml_nccl_mode STREQUAL "AUTO")
  message(FATAL_ERROR "HPCML_ENABLE_NCCL='${HPCML_ENABLE_NCCL}': expected AUTO, ON or OFF")
endif()
set(HPCML_HAS_NCCL "")
if(NOT _hpcml_nccl_mode STREQUAL "OFF")
  find_package(HpcmlNccl QUIET)
  if(HpcmlNccl_FOUND)
    set(HPCML_HAS_NCCL 1)
    message(STATUS "NCCL transport: NCCL ${HpcmlNccl_VERSION} (${HpcmlNccl_LIBRARY}), "
                   "CUDA runtime ${CUDAToolkit_VERSION}")
  elseif(_hpcml_nccl_mode STREQUAL "ON")
    message(FATAL_ERROR "HPCML_ENABLE_NCCL=ON but NCCL was not found: nccl.h, libnccl and the "
                        "CUDA runtime (find_package(CUDAToolkit)) are needed; set NCCL_ROOT")
  else()
    message(STATUS "NCCL transport: not built (nccl.h, libnccl or the CUDA runtime not found; "
                   "set NCCL_ROOT)")
  endif()
endif()

# Kokkos kernel backend (parallel.backend = "kokkos", docs/kernels.md).
# AUTO: built when Kokkos is found; ON: Kokkos required; OFF: not looked for.
# A site's own Kokkos wins: -DKokkos_ROOT=<its prefix> (cmake/FindHpcmlKokkos.cmake).
set(HPCML_ENABLE_KOKKOS AUTO CACHE STRING "Kokkos kernel backend: AUTO, ON or OFF")
set_property(CACHE HPCML_ENABLE_KOKKOS PROPERTY STRINGS AUTO ON OFF)
string(TOUPPER "${HPCML_ENABLE_KOKKOS}" _hpcml_kokkos_mode)
if(_hpcml_kokkos_mode MATCHES "^(ON|YES|TRUE|Y|1)$")
  set(_hpcml_kokkos_mode ON)
elseif(_hpcml_kokkos_mode MATCHES "^(OFF|NO|FALSE|N|0)$")
  set(_hpcml_kokkos_mode OFF)
elseif(NOT _hpcml_kokkos_mode STREQUAL "AUTO")
  message(FATAL_ERROR "HPCML_ENABLE_KOKKOS='${HPCML_ENABLE_KOKKOS}': expected AUTO, ON or OFF")
endif()
option(HPCML_KOKKOS_KERNELS "kokkos backend: GEMM through Kokkos Kernels when found (OFF: CBLAS)" ON)
set(HPCML_HAS_KOKKOS "")
set(HPCML_HAS_KOKKOS_KERNELS "")
if(NOT _hpcml_kokkos_mode STREQUAL "OFF")
  find_package(HpcmlKokkos QUIET)
  if(HpcmlKokkos_FOUND)
    set(HPCML_HAS_KOKKOS 1)
    if(HpcmlKokkos_KERNELS_FOUND)
      set(HPCML_HAS_KOKKOS_KERNELS 1)
      set(_hpcml_kokkos_gemm "KokkosBlas::gemm (Kokkos Kernels)")
    else()
      set(_hpcml_kokkos_gemm "CBLAS (Kokkos Kernels not found or HPCML_KOKKOS_KERNELS=OFF)")
    endif()
    message(STATUS "Kokkos backend: Kokkos ${HpcmlKokkos_VERSION} (${HpcmlKokkos_SOURCE}), "
                   "GEMM through ${_hpcml_kokkos_gemm}")
  elseif(_hpcml_kokkos_mode STREQUAL "ON")
    message(FATAL_ERROR "HPCML_ENABLE_KOKKOS=ON but Kokkos was not found: set Kokkos_ROOT to a "
                        "Kokkos installation, or install libtrilinos-kokkos-dev")
  else()
    message(STATUS "Kokkos backend: not built (Kokkos not found; set Kokkos_ROOT)")
  endif()
endif()

find_path(HPCML_SLURM_INCLUDE_DIR slurm/slurm.h)
find_library(HPCML_SLURM_LIBRARY slurm)
if(HPCML_SLURM_INCLUDE_DIR AND HPCML_SLURM_LIBRARY)
  set(_slurm_detected ON)
else()
  set(_slurm_detected OFF)
endif()
hpcml_feature(HPCML_ENABLE_SLURM "Submit through libslurm's C API" ${_slurm_detected})
if(HPCML_ENABLE_SLURM)
  if(NOT (HPCML_SLURM_INCLUDE_DIR AND HPCML_SLURM_LIBRARY))
    message(FATAL_ERROR "HPCML_ENABLE_SLURM=ON but slurm/slurm.h or libslurm was not found (install libslurm-dev)")
  endif()
  set(HPCML_HAS_SLURM 1)
endif()
