# Sourced by partrain's launch scripts (quickstart, test, job scripts): the environment every rank should run in.
#  - PARTRAIN_THREADS threads per rank for BLAS and OpenMP (default one: the ranks are the parallelism);
#  - OpenBLAS 0.3.21 misdetects recent AVX-512 CPUs and falls back to a slow kernel (sgemm 33 vs 155 GFLOP/s on
#    one thread, measured): force the SkylakeX kernel, but only where the CPU lists avx512f and the user has not
#    chosen a core type. Results record the core OpenBLAS actually used (the `blas` attribute).
#  - OpenMP threads that have nothing to do sleep instead of spinning (OMP_WAIT_POLICY=passive): with a Kokkos
#    OpenMP build and a threaded BLAS, spinning OpenMP threads took the cores OpenBLAS's threads needed — one rank
#    with 2 OpenMP + 2 BLAS threads ran the GPT step 4.4x slower than one thread, 1.5x faster with passive waits
#    (measured on a Kokkos 4.6 OpenMP build: docs/building.md). BLAS and OpenMP threads per rank never multiply: both are
#    PARTRAIN_THREADS (default 1; the ranks are the parallelism).
export OPENBLAS_NUM_THREADS=${PARTRAIN_THREADS:-1}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${PARTRAIN_THREADS:-1}}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
  export OPENBLAS_CORETYPE=SkylakeX
fi
