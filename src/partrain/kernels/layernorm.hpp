// LayerNorm over the last dimension C (eps = 1e-5 as GPT-2):
//   μ = mean(x),  σ⁻¹ = 1/√(var(x) + eps)  (biased variance),  x̂ = (x − μ)·σ⁻¹,  y = w ⊙ x̂ + b
// Backward (per row, with g = dy ⊙ w):
//   dx = σ⁻¹·(g − mean(g) − x̂·mean(g ⊙ x̂)),  dw += Σ_rows dy ⊙ x̂,  db += Σ_rows dy
// dx is ACCUMULATED (dx += …): LayerNorms sit on the residual stream, whose gradient already holds the skip path.
#pragma once

#include "partrain/core/math.hpp"
#include "partrain/core/types.hpp"
#include "partrain/kernels/bias.hpp"

namespace partrain::kernels {

constexpr double kLayerNormEps = 1e-5;

/// x, y: [N, C]; w, b: [C]; mean, rstd: [N] saved for backward.
template <class T>
void layernorm_forward(const View2<T>& x, const View1<T>& w, const View1<T>& b, const View2<T>& y,
                       const View1<T>& mean, const View1<T>& rstd) {
  const std::int64_t C = x.extent(1);
  Kokkos::parallel_for(
      "partrain::layernorm::forward", Kokkos::RangePolicy<ExecSpace>(0, x.extent(0)), KOKKOS_LAMBDA(std::int64_t n) {
        T m = 0;
        for (std::int64_t c = 0; c < C; ++c) m += x(n, c);
        m /= T(C);
        T v = 0;
        for (std::int64_t c = 0; c < C; ++c) {
          const T d = x(n, c) - m;
          v += d * d;
        }
        v /= T(C);
        const T r = T(1) / kmath::sqrt(v + T(kLayerNormEps));
        for (std::int64_t c = 0; c < C; ++c) y(n, c) = (x(n, c) - m) * r * w(c) + b(c);
        mean(n) = m;
        rstd(n) = r;
      });
}

/// dx += …; dw += …; db += … (parameter gradients by columns: deterministic, no atomics).
template <class T>
void layernorm_backward(const View2<T>& dy, const View2<T>& x, const View1<T>& w, const View1<T>& mean,
                        const View1<T>& rstd, const View2<T>& dx, const View1<T>& dw, const View1<T>& db) {
  const std::int64_t C = x.extent(1), N = x.extent(0);
  Kokkos::parallel_for(
      "partrain::layernorm::backward_input", Kokkos::RangePolicy<ExecSpace>(0, N), KOKKOS_LAMBDA(std::int64_t n) {
        const T m = mean(n), r = rstd(n);
        T g_mean = 0, gx_mean = 0;
        for (std::int64_t c = 0; c < C; ++c) {
          const T g = dy(n, c) * w(c);
          g_mean += g;
          gx_mean += g * (x(n, c) - m) * r;
        }
        g_mean /= T(C);
        gx_mean /= T(C);
        for (std::int64_t c = 0; c < C; ++c) {
          const T xh = (x(n, c) - m) * r;
          dx(n, c) += r * (dy(n, c) * w(c) - g_mean - xh * gx_mean);
        }
      });
  column_sums<T>("partrain::layernorm::backward_weight", N, C, dw, KOKKOS_LAMBDA(std::int64_t n, std::int64_t c) {
    return dy(n, c) * (x(n, c) - mean(n)) * rstd(n);
  });
  column_sums<T>("partrain::layernorm::backward_bias", N, C, db,
                 KOKKOS_LAMBDA(std::int64_t n, std::int64_t c) { return dy(n, c); });
}

}  // namespace partrain::kernels
