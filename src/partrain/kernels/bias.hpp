// Bias add and its backward: y[n, j] += b[j];  db[j] += Σ_n dy[n, j].
#pragma once

#include "partrain/core/types.hpp"

namespace partrain::kernels {

template <class T>
void bias_add(const View2<T>& y, const View1<T>& b) {
  const std::int64_t cols = y.extent(1);
  Kokkos::parallel_for(
      "partrain::bias::forward", Kokkos::RangePolicy<ExecSpace>(0, y.extent(0)), KOKKOS_LAMBDA(std::int64_t n) {
        for (std::int64_t j = 0; j < cols; ++j) y(n, j) += b(j);
      });
}

/// Accumulates column sums of dy into db (parallel over columns: deterministic, no atomics).
template <class T>
void bias_backward(const View2<T>& dy, const View1<T>& db) {
  const std::int64_t rows = dy.extent(0);
  Kokkos::parallel_for(
      "partrain::bias::backward", Kokkos::RangePolicy<ExecSpace>(0, dy.extent(1)), KOKKOS_LAMBDA(std::int64_t j) {
        T s = 0;
        for (std::int64_t n = 0; n < rows; ++n) s += dy(n, j);
        db(j) += s;
      });
}

}  // namespace partrain::kernels
