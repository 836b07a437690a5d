# Runs `hpcml ARGS...` on 2 ranks with a parallel.compression the NCCL
# transport does not run and passes only if every rank exited non-zero and the
# job printed exactly one error line naming parallel.compression and the codec.
# The refusal comes before any GPU is looked for, so it runs on any machine.
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
if(NOT "${errors}" MATCHES "parallel[.]compression'?: \"${CODEC}\" is not built for parallel.transport = \"nccl\", use none, fp16 or bf16")
  message(FATAL_ERROR "the error line does not refuse parallel.compression = ${CODEC}: ${errors}")
endif()
