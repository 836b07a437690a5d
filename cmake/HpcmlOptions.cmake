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

# CUDA, NCCL and Kokkos backends are not written yet: the options exist so that
# builds scripts stay stable, but turning them ON is refused with a clear message.
foreach(_opt CUDA NCCL KOKKOS)
  option(HPCML_ENABLE_${_opt} "${_opt} backend (not implemented yet)" OFF)
  if(HPCML_ENABLE_${_opt})
    message(FATAL_ERROR "HPCML_ENABLE_${_opt}=ON: the ${_opt} backend is not implemented in this version of hpcml")
  endif()
endforeach()

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
