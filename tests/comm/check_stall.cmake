# Runs the stall probe and passes only if the job failed with the stall exit
# status (4, hpcml::exit_code::kStalled: not 3, which asks to be requeued) AND
# the stall message named rank 1 (the rank that was deliberately late).
execute_process(COMMAND ${MPIEXEC} -n ${NP} ${PROBE} ${ALGO} ${MODE}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
message("${out}${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "the job exited 0: the stall inspector did not abort it")
endif()
if(NOT rc EQUAL 4)
  message(FATAL_ERROR "the job exited ${rc}, not 4 (the stall exit status)")
endif()
if(NOT "${out}${err}" MATCHES "stall: [a-z ]+ #[0-9]+ waited [0-9.]+ s; ranks not arrived: 1 \\(")
  message(FATAL_ERROR "no stall message naming rank 1 (exit code ${rc})")
endif()
