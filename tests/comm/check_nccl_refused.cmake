# Runs `hpcml ARGS...` on 2 ranks where NCCL cannot run (no NCCL built in, or no
# GPU) and passes only if every rank exited non-zero and the job printed exactly
# one error line, naming why: "not compiled in" or cudaGetDeviceCount's answer.
# On a machine where NCCL can run (a GPU, as `hpcml info` says) there is nothing
# to refuse: skipped.
# `hpcml info` says "NCCL ... , N GPU(s)" where NCCL can run.
execute_process(COMMAND ${HPCML} info OUTPUT_VARIABLE info ERROR_VARIABLE info_err TIMEOUT 30)
if("${info}" MATCHES "NCCL +[^\n]*, [0-9]+ GPU\\(s\\)")
  message("SKIPPED: NCCL runs here (a GPU is visible): nothing to refuse")
  return()
endif()
execute_process(COMMAND ${MPIEXEC} -n 2 sh -c "\"$0\" \"$@\"; echo \"[rank-exit=$?]\"" ${HPCML}
                        ${ARGS}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 50)
set(all "${out}${err}")
message("${all}")
string(REPLACE ";" "," all "${all}")  # a ';' in a message would split the lists below
string(REGEX MATCHALL "\\[rank-exit=[1-9][0-9]*\\]" failed "${all}")
list(LENGTH failed nfailed)
string(REGEX MATCHALL "hpcml: error[^\n]*" errors "${all}")
list(LENGTH errors nerrors)
if(NOT nfailed EQUAL 2)
  message(FATAL_ERROR "${nfailed} of 2 ranks exited non-zero (expected both)")
endif()
if(NOT nerrors EQUAL 1)
  message(FATAL_ERROR "${nerrors} error lines (expected exactly one)")
endif()
if(NOT "${errors}" MATCHES "not compiled in|no GPU for the NCCL transport: cudaGetDeviceCount")
  message(FATAL_ERROR "the error line does not say why NCCL cannot run: ${errors}")
endif()
