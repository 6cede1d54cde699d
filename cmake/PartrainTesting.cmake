# Test registration. partrain_add_mpi_test(NAME <name> TARGET <exe> NP 1 2 4 [ARGS ...] [LABELS ...])
# registers <name>_np_<n> for each rank count, launched through MPIEXEC_EXECUTABLE, with one BLAS thread per rank.
include_guard(GLOBAL)

function(partrain_add_mpi_test)
  cmake_parse_arguments(T "" "NAME;TARGET;TIMEOUT" "NP;ARGS;LABELS" ${ARGN})
  if(NOT T_NP)
    set(T_NP 1 2 4)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  foreach(np IN LISTS T_NP)
    set(test_name ${T_NAME}_np_${np})
    add_test(NAME ${test_name}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} ${MPIEXEC_PREFLAGS}
                     $<TARGET_FILE:${T_TARGET}> ${MPIEXEC_POSTFLAGS} ${T_ARGS})
    # PROCESSORS lets `ctest -j` keep the machine from being oversubscribed by several MPI tests at once.
    set(procs ${np})
    if(procs GREATER 2)
      set(procs 2)
    endif()
    set_tests_properties(${test_name} PROPERTIES
      PROCESSORS ${procs} TIMEOUT ${T_TIMEOUT} LABELS "mpi;${T_LABELS}"
      ENVIRONMENT "OPENBLAS_NUM_THREADS=1;OMP_NUM_THREADS=1;PARTRAIN_TEST_NP=${np}")
  endforeach()
endfunction()
