// General matrix multiply, C = alpha·op(A)·op(B) + beta·C, through KokkosBlas::gemm (which reaches the system
// BLAS on host backends and cuBLAS on CUDA). op is 'N' (as stored) or 'T' (transposed); all views LayoutRight.
// FLOPs: 2·m·n·k.
//
// 16-bit storage (bf16, fp16): the products accumulate in fp32 and C is stored with one rounding, beta·C included
// (gemm_half, kernels/gemm_half.cpp): oneDNN's matmul on the host where it has a kernel for the type (bf16 on
// AVX-512/AMX CPUs), otherwise fp32 copies and sgemm; cuBLAS's cublasGemmEx with CUBLAS_COMPUTE_32F on CUDA.
// half_gemm_kernel() names which one runs.
#pragma once

#include <KokkosBlas3_gemm.hpp>

#include <string>

#include "partrain/core/types.hpp"

namespace partrain::kernels {

void gemm_half(char trans_a, char trans_b, float alpha, const View2<bf16>& A, const View2<bf16>& B, float beta,
               const View2<bf16>& C);
void gemm_half(char trans_a, char trans_b, float alpha, const View2<fp16>& A, const View2<fp16>& B, float beta,
               const View2<fp16>& C);
/// The kernel the 16-bit gemms of `precision` ("bf16" or "fp16") run on this machine, e.g.
/// "oneDNN 2.6 matmul (ISA avx512_core_amx)" or "fp32 sgemm on converted copies (…)".
std::string half_gemm_kernel(const std::string& precision);

template <class T>
void gemm(char trans_a, char trans_b, acc_t<T> alpha, const View2<T>& A, const View2<T>& B, acc_t<T> beta,
          const View2<T>& C) {
  const char ta[2] = {trans_a, '\0'}, tb[2] = {trans_b, '\0'};
  if (C.extent(0) == 0 || C.extent(1) == 0) return;
  const std::size_t k = trans_a == 'N' ? A.extent(1) : A.extent(0);
  if (k == 0) {  // nothing to multiply: C = beta·C (BLAS would do the same, some wrappers reject k = 0)
    if (beta == acc_t<T>(0)) Kokkos::deep_copy(C, T(0));
    else if (beta != acc_t<T>(1)) {
      Kokkos::parallel_for("partrain::gemm::scale", Kokkos::RangePolicy<ExecSpace>(0, C.extent(0)),
                           KOKKOS_LAMBDA(std::int64_t i) {
                             for (std::size_t j = 0; j < C.extent(1); ++j) C(i, j) = acc_t<T>(C(i, j)) * beta;
                           });
    }
    return;
  }
  if constexpr (is_half_v<T>) {
    gemm_half(trans_a, trans_b, alpha, A, B, beta, C);
  } else {
    KokkosBlas::gemm(ta, tb, alpha, A, B, beta, C);
  }
}

/// FLOPs of one gemm with output m×n and inner dimension k.
inline double gemm_flops(double m, double n, double k) { return 2.0 * m * n * k; }

}  // namespace partrain::kernels
