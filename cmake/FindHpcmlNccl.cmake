# FindHpcmlNccl: NCCL and the CUDA runtime for hpcml's NCCL transport
# (parallel.transport = "nccl", docs/communication.md "NCCL transport").
#
# Host C++ only: the transport calls the CUDA runtime API and NCCL from ordinary
# C++ files, so no CUDA compiler is needed. The CUDA runtime comes from
# find_package(CUDAToolkit); nccl.h and libnccl are looked up in NCCL_ROOT
# (variable or environment), then in the CUDA toolkit's directories (the NVIDIA
# HPC SDK and CUDA 13 containers put NCCL there), then in the system paths.
#
# Results:
#   HpcmlNccl_FOUND          NCCL and the CUDA runtime usable
#   HpcmlNccl_VERSION        NCCL version from nccl.h (e.g. 2.28.9)
#   HpcmlNccl_INCLUDE_DIRS   nccl.h's directory and the CUDA toolkit's include directory
#   HpcmlNccl_LIBRARIES      libnccl and libcudart as absolute paths (so that the
#                            installed static hpcml_comm carries them without
#                            consumers having to find NCCL again)
include(FindPackageHandleStandardArgs)

find_package(CUDAToolkit QUIET)

set(_hn_hints "")
if(DEFINED NCCL_ROOT)
  list(APPEND _hn_hints "${NCCL_ROOT}")
endif()
if(DEFINED ENV{NCCL_ROOT})
  list(APPEND _hn_hints "$ENV{NCCL_ROOT}")
endif()
if(CUDAToolkit_FOUND)
  list(APPEND _hn_hints "${CUDAToolkit_LIBRARY_ROOT}" "${CUDAToolkit_TARGET_DIR}")
endif()

find_path(HpcmlNccl_INCLUDE_DIR nccl.h HINTS ${_hn_hints} ${CUDAToolkit_INCLUDE_DIRS}
          PATH_SUFFIXES include)
find_library(HpcmlNccl_LIBRARY nccl HINTS ${_hn_hints} ${CUDAToolkit_LIBRARY_DIR}
             PATH_SUFFIXES lib64 lib)

set(HpcmlNccl_VERSION "")
if(HpcmlNccl_INCLUDE_DIR AND EXISTS "${HpcmlNccl_INCLUDE_DIR}/nccl.h")
  file(STRINGS "${HpcmlNccl_INCLUDE_DIR}/nccl.h" _hn_lines
       REGEX "^#define NCCL_(MAJOR|MINOR|PATCH) +[0-9]+")
  foreach(_part MAJOR MINOR PATCH)
    set(_hn_${_part} "")
    foreach(_line IN LISTS _hn_lines)
      if(_line MATCHES "^#define NCCL_${_part} +([0-9]+)")
        set(_hn_${_part} "${CMAKE_MATCH_1}")
      endif()
    endforeach()
  endforeach()
  set(HpcmlNccl_VERSION "${_hn_MAJOR}.${_hn_MINOR}.${_hn_PATCH}")
endif()

set(_hn_cudart "")
if(CUDAToolkit_FOUND AND CUDA_cudart_LIBRARY)
  set(_hn_cudart "${CUDA_cudart_LIBRARY}")
endif()

find_package_handle_standard_args(HpcmlNccl
  REQUIRED_VARS HpcmlNccl_LIBRARY HpcmlNccl_INCLUDE_DIR _hn_cudart
  VERSION_VAR HpcmlNccl_VERSION)

if(HpcmlNccl_FOUND)
  set(HpcmlNccl_INCLUDE_DIRS "${HpcmlNccl_INCLUDE_DIR}" ${CUDAToolkit_INCLUDE_DIRS})
  list(REMOVE_DUPLICATES HpcmlNccl_INCLUDE_DIRS)
  set(HpcmlNccl_LIBRARIES "${HpcmlNccl_LIBRARY}" "${_hn_cudart}")
endif()
mark_as_advanced(HpcmlNccl_INCLUDE_DIR HpcmlNccl_LIBRARY)
