# hpcml_add_test(NAME name SOURCES a.cpp ... [LIBS ...] [MPI_SIZES 2 3 ...]
#                [LABELS unit ...] [TIMEOUT seconds])
#
# Builds one GoogleTest executable. Without MPI_SIZES it runs serially (label
# "unit" unless LABELS says otherwise) with the plain GoogleTest main. With
# MPI_SIZES it links the MPI-aware main (only rank 0 reports, a failure on any
# rank fails the test) and registers one CTest test per size, each started as
# `mpiexec -n <size>`, with PROCESSORS set so CTest never oversubscribes.
function(hpcml_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;MPI_SIZES;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} hpcml_warnings)
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/tests/common)
  if(T_MPI_SIZES)
    target_link_libraries(${T_NAME} PRIVATE hpcml_mpi_gtest_main GTest::gtest)
    if(NOT T_LABELS)
      set(T_LABELS mpi)
    endif()
    foreach(n IN LISTS T_MPI_SIZES)
      set(_name ${T_NAME}_np${n})
      add_test(NAME ${_name}
               COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${n}
                       ${MPIEXEC_PREFLAGS} $<TARGET_FILE:${T_NAME}> ${MPIEXEC_POSTFLAGS})
      # A machine with fewer cores than ranks still runs the test (oversubscribed):
      # PROCESSORS is capped so CTest can schedule it at all.
      set(_procs ${n})
      cmake_host_system_information(RESULT _ncores QUERY NUMBER_OF_LOGICAL_CORES)
      if(_procs GREATER _ncores)
        set(_procs ${_ncores})
      endif()
      set_tests_properties(${_name} PROPERTIES LABELS "${T_LABELS}" PROCESSORS ${_procs}
                           TIMEOUT ${T_TIMEOUT}
                           ENVIRONMENT "OMP_NUM_THREADS=1;OMP_WAIT_POLICY=passive;HPCML_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
    endforeach()
  else()
    target_link_libraries(${T_NAME} PRIVATE GTest::gtest_main GTest::gtest)
    if(NOT T_LABELS)
      set(T_LABELS unit)
    endif()
    add_test(NAME ${T_NAME} COMMAND ${T_NAME})
    set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
                         ENVIRONMENT "OMP_NUM_THREADS=1;OMP_WAIT_POLICY=passive;HPCML_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
  endif()
endfunction()
