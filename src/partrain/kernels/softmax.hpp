// Row softmax, numerically stable: y[n, j] = exp(x[n, j] − max_j x[n, ·]) / Σ_j exp(…).
// Backward: dx[n, j] = y[n, j]·(dy[n, j] − Σ_k dy[n, k]·y[n, k]).
// `causal_offset` >= 0 masks entries j > n + causal_offset (they get probability 0): row n of a T×T attention
// matrix sees keys 0 … n.
#pragma once

#include "partrain/core/math.hpp"
#include "partrain/core/types.hpp"

namespace partrain::kernels {

template <class T>
KOKKOS_INLINE_FUNCTION void softmax_row(const T* x, T* y, std::int64_t n_valid, std::int64_t n_total) {
  T mx = x[0];
  for (std::int64_t j = 1; j < n_valid; ++j) mx = x[j] > mx ? x[j] : mx;
  T sum = 0;
  for (std::int64_t j = 0; j < n_valid; ++j) {
    const T e = kmath::exp(x[j] - mx);
    y[j] = e;
    sum += e;
  }
  const T inv = T(1) / sum;
  for (std::int64_t j = 0; j < n_valid; ++j) y[j] *= inv;
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
        T dot = 0;
        for (std::int64_t j = 0; j < cols; ++j) dot += dy(n, j) * y(n, j);
        for (std::int64_t j = 0; j < cols; ++j) dx(n, j) = y(n, j) * (dy(n, j) - dot);
      });
}

}  // namespace partrain::kernels
