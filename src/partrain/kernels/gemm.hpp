// General matrix multiply, C = alpha·op(A)·op(B) + beta·C, through KokkosBlas::gemm (which reaches the system
// BLAS on host backends and cuBLAS on CUDA). op is 'N' (as stored) or 'T' (transposed); all views LayoutRight.
// FLOPs: 2·m·n·k.
#pragma once

#include <KokkosBlas3_gemm.hpp>

#include "partrain/core/types.hpp"

namespace partrain::kernels {

template <class T>
void gemm(char trans_a, char trans_b, T alpha, const View2<T>& A, const View2<T>& B, T beta, const View2<T>& C) {
  const char ta[2] = {trans_a, '\0'}, tb[2] = {trans_b, '\0'};
  if (C.extent(0) == 0 || C.extent(1) == 0) return;
  const std::size_t k = trans_a == 'N' ? A.extent(1) : A.extent(0);
  if (k == 0) {  // nothing to multiply: C = beta·C (BLAS would do the same, some wrappers reject k = 0)
    if (beta == T(0)) Kokkos::deep_copy(C, T(0));
    else if (beta != T(1)) {
      Kokkos::parallel_for("partrain::gemm::scale", Kokkos::RangePolicy<ExecSpace>(0, C.extent(0)),
                           KOKKOS_LAMBDA(std::int64_t i) {
                             for (std::size_t j = 0; j < C.extent(1); ++j) C(i, j) *= beta;
                           });
    }
    return;
  }
  KokkosBlas::gemm(ta, tb, alpha, A, B, beta, C);
}

/// FLOPs of one gemm with output m×n and inner dimension k.
inline double gemm_flops(double m, double n, double k) { return 2.0 * m * n * k; }

}  // namespace partrain::kernels
