// Bias add and its backward: y[n, j] += b[j];  db[j] += Σ_n dy[n, j].
#pragma once

#include "partrain/core/types.hpp"

namespace partrain::kernels {

template <class T>
void bias_add(const View2<T>& y, const View1<T>& b) {
  const std::int64_t cols = y.extent(1);
  Kokkos::parallel_for(
      "partrain::bias::forward", Kokkos::RangePolicy<ExecSpace>(0, y.extent(0)), KOKKOS_LAMBDA(std::int64_t n) {
        for (std::int64_t j = 0; j < cols; ++j) y(n, j) = acc_t<T>(y(n, j)) + acc_t<T>(b(j));
      });
}

/// Column blocks of this width are summed by one work item: the inner loop runs along a row (contiguous,
/// vectorised) and no two items touch the same column, so the sums need no atomics and are deterministic.
constexpr std::int64_t kColumnBlock = 64;

/// acc[j] += Σ_n f(n, j) for j in [0, cols), with f a device-callable (n, j) -> acc_t<T>; the sums run in acc_t<T>
/// and are stored with one rounding.
template <class T, class F>
void column_sums(const char* label, std::int64_t rows, std::int64_t cols, const View1<T>& acc, F f) {
  const std::int64_t blocks = (cols + kColumnBlock - 1) / kColumnBlock;
  Kokkos::parallel_for(
      label, Kokkos::RangePolicy<ExecSpace>(0, blocks), KOKKOS_LAMBDA(std::int64_t blk) {
        const std::int64_t j0 = blk * kColumnBlock;
        const std::int64_t w = cols - j0 < kColumnBlock ? cols - j0 : kColumnBlock;
        using A = acc_t<T>;
        A s[kColumnBlock];
        for (std::int64_t j = 0; j < w; ++j) s[j] = A(0);
        for (std::int64_t n = 0; n < rows; ++n)
          for (std::int64_t j = 0; j < w; ++j) s[j] += f(n, j0 + j);
        for (std::int64_t j = 0; j < w; ++j) acc(j0 + j) = A(acc(j0 + j)) + s[j];
      });
}

/// Accumulates column sums of dy into db.
template <class T>
void bias_backward(const View2<T>& dy, const View1<T>& db) {
  column_sums<T>("partrain::bias::backward", dy.extent(0), dy.extent(1), db,
                 KOKKOS_LAMBDA(std::int64_t n, std::int64_t j) { return acc_t<T>(dy(n, j)); });
}

}  // namespace partrain::kernels
