# Sourced by partrain's launch scripts (quickstart, test, job scripts): the environment every rank should run in.
#  - one BLAS thread per rank (ranks are the parallelism);
#  - OpenBLAS 0.3.21 misdetects recent AVX-512 CPUs and falls back to a slow kernel (sgemm 33 vs 155 GFLOP/s on
#    one thread, measured): force the SkylakeX kernel, but only where the CPU lists avx512f and the user has not
#    chosen a core type. Results record the core OpenBLAS actually used (the `blas` attribute).
export OPENBLAS_NUM_THREADS=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
  export OPENBLAS_CORETYPE=SkylakeX
fi
