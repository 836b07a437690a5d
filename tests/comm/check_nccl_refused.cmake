# Runs `hpcml ARGS...` on 2 ranks and passes only if every rank exited non-zero
# and the job printed exactly one error line, matching EXPECT.
# Without CODEC: selecting NCCL where it cannot run (no NCCL built in, or no
# GPU); the line must say why ("not compiled in" or cudaGetDeviceCount's
# answer). On a machine where NCCL can run (a GPU, as `hpcml info` says) there
# is nothing to refuse: skipped.
# With CODEC: a parallel.compression the NCCL transport does not run; the line
# names parallel.compression and the codec. That refusal comes before any GPU
# is looked for, so it runs on any machine.
if(DEFINED CODEC)
  set(expect "parallel[.]compression'?: \"${CODEC}\" is not built for parallel.transport = \"nccl\", use none, fp16 or bf16")
else()
  set(expect "not compiled in|no GPU for the NCCL transport: cudaGetDeviceCount")
  # `hpcml info` says "NCCL ... , N GPU(s)" where NCCL can run.
  execute_process(COMMAND ${HPCML} info OUTPUT_VARIABLE info ERROR_VARIABLE info_err TIMEOUT 30)
  if("${info}" MATCHES "NCCL +[^\n]*, [0-9]+ GPU\\(s\\)")
    message("SKIPPED: NCCL runs here (a GPU is visible): nothing to refuse")
    return()
  endif()
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
if(NOT "${errors}" MATCHES "${expect}")
  message(FATAL_ERROR "the error line does not match '${expect}': ${errors}")
endif()
