# Run by CTest as `cmake -P` (see CMakeLists.txt beside this file):
#  1. cmake --install the build tree into WORK/prefix;
#  2. check the layout: bin/hpcml, headers, config.hpp, the CMake package,
#     share/hpcml/configs, the Lmod module file;
#  3. run WORK/prefix/bin/hpcml info, and check that the installed binary takes its
#     site profiles from WORK/prefix/share/hpcml/configs/sites (submit --dry-run,
#     which writes and submits nothing);
#  4. configure, build and run tests/install/consumer against the prefix.
cmake_minimum_required(VERSION 3.25)

foreach(_v HPCML_BUILD_DIR HPCML_CONSUMER_SOURCE_DIR HPCML_WORK_DIR HPCML_VERSION
           HPCML_GENERATOR HPCML_CXX_COMPILER)
  if(NOT DEFINED ${_v} OR "${${_v}}" STREQUAL "")
    message(FATAL_ERROR "install_consumer.cmake: -D${_v}=... is required")
  endif()
endforeach()
if(NOT HPCML_BUILD_TYPE)
  set(HPCML_BUILD_TYPE Release)
endif()

set(_prefix ${HPCML_WORK_DIR}/prefix)
set(_consumer_build ${HPCML_WORK_DIR}/consumer-build)
file(REMOVE_RECURSE ${HPCML_WORK_DIR})
file(MAKE_DIRECTORY ${HPCML_WORK_DIR})

# Runs a command; fails the test with its output unless it exits 0.
function(run_step what)
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY ${HPCML_WORK_DIR}
                  RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (exit ${_rc}):\n${ARGN}\n${_out}\n${_err}")
  endif()
  set(STEP_OUTPUT "${_out}${_err}" PARENT_SCOPE)
  message(STATUS "ok: ${what}")
endfunction()

# ---- 1. install ----------------------------------------------------------------
run_step("cmake --install" ${CMAKE_COMMAND} --install ${HPCML_BUILD_DIR} --prefix ${_prefix})

# ---- 2. layout -----------------------------------------------------------------
file(GLOB _cmake_dirs LIST_DIRECTORIES true ${_prefix}/lib*/cmake/hpcml)
if(NOT _cmake_dirs)
  message(FATAL_ERROR "no lib*/cmake/hpcml under ${_prefix}")
endif()
list(GET _cmake_dirs 0 _cmake_dir)
foreach(_f bin/hpcml include/hpcml/config.hpp include/hpcml/core/config_doc.hpp
           include/hpcml/core/data.hpp include/hpcml/comm/allreduce.hpp
           share/hpcml/configs/sites/local.toml share/hpcml/docs/architecture.md
           share/hpcml/modulefiles/hpcml/${HPCML_VERSION}.lua)
  if(NOT EXISTS ${_prefix}/${_f})
    message(FATAL_ERROR "missing after install: ${_prefix}/${_f}")
  endif()
endforeach()
foreach(_f hpcmlConfig.cmake hpcmlConfigVersion.cmake hpcmlTargets.cmake)
  if(NOT EXISTS ${_cmake_dir}/${_f})
    message(FATAL_ERROR "missing after install: ${_cmake_dir}/${_f}")
  endif()
endforeach()
# Nothing of the build or source tree may leak into the exported package.
file(GLOB _targets_files ${_cmake_dir}/hpcmlTargets*.cmake)
foreach(_f IN LISTS _targets_files)
  file(READ ${_f} _text)
  foreach(_bad "hpcml_warnings" "${HPCML_BUILD_DIR}")
    string(FIND "${_text}" "${_bad}" _at)
    if(NOT _at EQUAL -1)
      message(FATAL_ERROR "${_f} mentions '${_bad}'")
    endif()
  endforeach()
endforeach()
# Test programs and tools stay out of bin/.
file(GLOB _bins RELATIVE ${_prefix}/bin ${_prefix}/bin/*)
if(NOT _bins STREQUAL "hpcml")
  message(FATAL_ERROR "bin/ should hold hpcml only, holds: ${_bins}")
endif()
# The module file has the real prefix.
file(READ ${_prefix}/share/hpcml/modulefiles/hpcml/${HPCML_VERSION}.lua _lua)
string(FIND "${_lua}" "local prefix = \"${_prefix}\"" _at)
if(_at EQUAL -1 OR _lua MATCHES "@[A-Z_]+@")
  message(FATAL_ERROR "module file not configured with the prefix ${_prefix}:\n${_lua}")
endif()

# Its Lua parses, where a Lua compiler is installed (optional: not in the deps list).
find_program(_luac NAMES luac luac5.4 luac5.3 luac5.1)
if(_luac)
  run_step("luac -p on the module file" ${_luac} -p
           ${_prefix}/share/hpcml/modulefiles/hpcml/${HPCML_VERSION}.lua)
else()
  message(STATUS "skipped: luac -p on the module file (no luac)")
endif()

# ---- 3. the installed executable --------------------------------------------------
# Without HPCML_SITES_DIR the installed binary must use its own share/hpcml.
unset(ENV{HPCML_SITES_DIR})
run_step("hpcml info" ${_prefix}/bin/hpcml info)
string(FIND "${STEP_OUTPUT}" "${HPCML_VERSION}" _at)
if(_at EQUAL -1)
  message(FATAL_ERROR "hpcml info does not print version ${HPCML_VERSION}:\n${STEP_OUTPUT}")
endif()
# A site profile that exists only under the prefix: found only if the installed
# binary reads <prefix>/share/hpcml/configs/sites.
set(_sites ${_prefix}/share/hpcml/configs/sites)
file(READ ${_sites}/local.toml _site)
string(REPLACE "name = \"local\"" "name = \"installcheck\"" _site "${_site}")
file(WRITE ${_sites}/installcheck.toml "${_site}")
run_step("hpcml submit --dry-run --site installcheck" ${_prefix}/bin/hpcml submit --dry-run
         --site installcheck ${_prefix}/share/hpcml/configs/fashion_mnist_mlp.toml)
string(FIND "${STEP_OUTPUT}" "for site 'installcheck'" _at)
if(_at EQUAL -1)
  message(FATAL_ERROR "installed hpcml did not use ${_sites}:\n${STEP_OUTPUT}")
endif()

# ---- 4. a consumer project ----------------------------------------------------------
set(_configure ${CMAKE_COMMAND} -S ${HPCML_CONSUMER_SOURCE_DIR} -B ${_consumer_build}
    -G ${HPCML_GENERATOR} -DCMAKE_BUILD_TYPE=${HPCML_BUILD_TYPE}
    -DCMAKE_CXX_COMPILER=${HPCML_CXX_COMPILER} -DCMAKE_PREFIX_PATH=${_prefix}
    -DEXPECTED_HPCML_VERSION=${HPCML_VERSION})
if(HPCML_C_COMPILER)
  list(APPEND _configure -DCMAKE_C_COMPILER=${HPCML_C_COMPILER})
endif()
run_step("configure the consumer" ${_configure})
run_step("build the consumer" ${CMAKE_COMMAND} --build ${_consumer_build} -j2)
run_step("run the consumer" ${_consumer_build}/hpcml_consumer)
set(_expected "hpcml ${HPCML_VERSION} consumer: batch_size=32 name=consumer steps=7 indices=224 distinct=224")
string(FIND "${STEP_OUTPUT}" "${_expected}" _at)
if(_at EQUAL -1)
  message(FATAL_ERROR "consumer output:\n${STEP_OUTPUT}\nexpected a line:\n${_expected}")
endif()
message(STATUS "install_consumer: passed (prefix ${_prefix})")
