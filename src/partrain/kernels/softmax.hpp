// Row softmax, numerically stable: y[n, j] = exp(x[n, j] − max_j x[n, ·]) / Σ_j exp(…).
// Backward: dx[n, j] = y[n, j]·(dy[n, j] − Σ_k dy[n, k]·y[n, k]).
// `causal_offset` >= 0 masks entries j > n + causal_offset (they get probability 0): row n of a T×T attention
// matrix sees keys 0 … n. Computed in acc_t<T>; a 16-bit y is stored once per entry (the exponentials are computed
// again in the normalising pass rather than rounded twice).
#pragma once

#include "partrain/core/math.hpp"
#include "partrain/core/types.hpp"

namespace partrain::kernels {

template <class T>
KOKKOS_INLINE_FUNCTION void softmax_row(const T* x, T* y, std::int64_t n_valid, std::int64_t n_total) {
  using A = acc_t<T>;
  A mx = x[0];
  for (std::int64_t j = 1; j < n_valid; ++j) mx = A(x[j]) > mx ? A(x[j]) : mx;
  A sum = 0;
  if constexpr (is_half_v<T>) {  // y may alias x: the sum first, then each entry stored once
    for (std::int64_t j = 0; j < n_valid; ++j) sum += kmath::exp(A(x[j]) - mx);
    const A inv = A(1) / sum;
    for (std::int64_t j = 0; j < n_valid; ++j) y[j] = kmath::exp(A(x[j]) - mx) * inv;
  } else {
    for (std::int64_t j = 0; j < n_valid; ++j) {
      const T e = kmath::exp(x[j] - mx);
      y[j] = e;
      sum += e;
    }
    const T inv = T(1) / sum;
    for (std::int64_t j = 0; j < n_valid; ++j) y[j] *= inv;
  }
  for (std::int64_t j = n_valid; j < n_total; ++j) y[j] = T(0);
}

/// y = softmax(x) by rows; y may alias x. causal_offset < 0: no mask.
template <class T>
void softmax_forward(const View2<T>& x, const View2<T>& y, std::int64_t causal_offset = -1) {
  const std::int64_t cols = x.extent(1);
  Kokkos::parallel_for(
      "partrain::softmax::forward", Kokkos::RangePolicy<ExecSpace>(0, x.extent(0)), KOKKOS_LAMBDA(std::int64_t n) {
        std::int64_t valid = causal_offset < 0 ? cols : n + causal_offset + 1;
        valid = valid > cols ? cols : valid;
        softmax_row(&x(n, 0), &y(n, 0), valid, cols);
      });
}

/// dx = softmax backward given y and dy; dx may alias dy. Masked entries have y = 0 and so get dx = 0.
template <class T>
void softmax_backward(const View2<T>& y, const View2<T>& dy, const View2<T>& dx) {
  const std::int64_t cols = y.extent(1);
  Kokkos::parallel_for(
      "partrain::softmax::backward", Kokkos::RangePolicy<ExecSpace>(0, y.extent(0)), KOKKOS_LAMBDA(std::int64_t n) {
        using A = acc_t<T>;
        A dot = 0;
        for (std::int64_t j = 0; j < cols; ++j) dot += A(dy(n, j)) * A(y(n, j));
        for (std::int64_t j = 0; j < cols; ++j) dx(n, j) = A(y(n, j)) * (A(dy(n, j)) - dot);
      });
}

}  // namespace partrain::kernels
