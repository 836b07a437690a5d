# Feature options. Each defaults to what this machine can build; an explicit ON
# that cannot be satisfied is an error, never a silent fallback.
include(CheckLanguage)

# hpcml_tristate_option(NAME DOC): the cache string NAME = AUTO (default), ON or
# OFF (also YES/NO, TRUE/FALSE, Y/N, 1/0, any case), for an optional part that
# needs something found on this machine. Sets ${NAME}_MODE to AUTO, ON or OFF
# in the caller; any other value is a configure error naming NAME. A build
# directory configured when NAME was still a placeholder BOOL ("... not
# implemented yet", cached OFF) starts again at AUTO like a fresh one.
function(hpcml_tristate_option NAME DOC)
  if(DEFINED CACHE{${NAME}})
    get_property(_help CACHE ${NAME} PROPERTY HELPSTRING)
    if(_help MATCHES "not implemented yet")
      unset(${NAME} CACHE)
    endif()
  endif()
  set(${NAME} AUTO CACHE STRING "${DOC}: AUTO, ON or OFF")
  set_property(CACHE ${NAME} PROPERTY STRINGS AUTO ON OFF)
  string(TOUPPER "${${NAME}}" _mode)
  if(_mode MATCHES "^(ON|YES|TRUE|Y|1)$")
    set(_mode ON)
  elseif(_mode MATCHES "^(OFF|NO|FALSE|N|0)$")
    set(_mode OFF)
  elseif(NOT _mode STREQUAL "AUTO")
    message(FATAL_ERROR "${NAME}='${${NAME}}': expected AUTO, ON or OFF")
  endif()
  set(${NAME}_MODE ${_mode} PARENT_SCOPE)
endfunction()

# hpcml_tristate_result(NAME FOUND <bool> LABEL <text> SUMMARY <text>
#                       MISSING <text> HINT <text>)
# After looking (NAME not OFF): found prints "LABEL: SUMMARY"; not found is a
# configure error "NAME=ON but MISSING: HINT" when NAME is ON, and prints
# "LABEL: not built (MISSING; HINT)" when it is AUTO.
function(hpcml_tristate_result NAME)
  cmake_parse_arguments(PARSE_ARGV 1 _a "" "FOUND;LABEL;SUMMARY;MISSING;HINT" "")
  if(_a_FOUND)
    message(STATUS "${_a_LABEL}: ${_a_SUMMARY}")
  elseif(${NAME}_MODE STREQUAL "ON")
    message(FATAL_ERROR "${NAME}=ON but ${_a_MISSING}: ${_a_HINT}")
  else()
    message(STATUS "${_a_LABEL}: not built (${_a_MISSING}; ${_a_HINT})")
  endif()
endfunction()

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
hpcml_tristate_option(HPCML_ENABLE_NCCL "NCCL transport")
set(HPCML_HAS_NCCL "")
if(NOT HPCML_ENABLE_NCCL_MODE STREQUAL "OFF")
  find_package(HpcmlNccl QUIET)
  if(HpcmlNccl_FOUND)
    set(HPCML_HAS_NCCL 1)
  endif()
  hpcml_tristate_result(HPCML_ENABLE_NCCL FOUND "${HpcmlNccl_FOUND}" LABEL "NCCL transport"
    SUMMARY "NCCL ${HpcmlNccl_VERSION} (${HpcmlNccl_LIBRARY}), CUDA runtime ${CUDAToolkit_VERSION}"
    MISSING "NCCL was not found (nccl.h, libnccl and the CUDA runtime are needed)"
    HINT "set NCCL_ROOT")
endif()

# Kokkos kernel backend (parallel.backend = "kokkos", docs/kernels.md).
# AUTO: built when Kokkos is found; ON: Kokkos required; OFF: not looked for.
# A site's own Kokkos wins: -DKokkos_ROOT=<its prefix> (cmake/FindHpcmlKokkos.cmake).
hpcml_tristate_option(HPCML_ENABLE_KOKKOS "Kokkos kernel backend")
option(HPCML_KOKKOS_KERNELS "kokkos backend: GEMM through Kokkos Kernels when found (OFF: CBLAS)" ON)
set(HPCML_HAS_KOKKOS "")
set(HPCML_HAS_KOKKOS_KERNELS "")
if(NOT HPCML_ENABLE_KOKKOS_MODE STREQUAL "OFF")
  find_package(HpcmlKokkos QUIET)
  if(HpcmlKokkos_FOUND)
    set(HPCML_HAS_KOKKOS 1)
    if(HpcmlKokkos_KERNELS_FOUND)
      set(HPCML_HAS_KOKKOS_KERNELS 1)
      set(_hpcml_kokkos_gemm "KokkosBlas::gemm (Kokkos Kernels)")
    else()
      set(_hpcml_kokkos_gemm "CBLAS (Kokkos Kernels not found or HPCML_KOKKOS_KERNELS=OFF)")
    endif()
  endif()
  hpcml_tristate_result(HPCML_ENABLE_KOKKOS FOUND "${HpcmlKokkos_FOUND}" LABEL "Kokkos backend"
    SUMMARY "Kokkos ${HpcmlKokkos_VERSION} (${HpcmlKokkos_SOURCE}), GEMM through ${_hpcml_kokkos_gemm}"
    MISSING "Kokkos was not found"
    HINT "set Kokkos_ROOT to a Kokkos installation, or install libtrilinos-kokkos-dev")
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
