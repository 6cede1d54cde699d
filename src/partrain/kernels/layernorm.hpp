// LayerNorm over the last dimension C (eps = 1e-5 as GPT-2):
//   μ = mean(x),  σ⁻¹ = 1/√(var(x) + eps)  (biased variance),  x̂ = (x − μ)·σ⁻¹,  y = w ⊙ x̂ + b
// Backward (per row, with g = dy ⊙ w):
//   dx = σ⁻¹·(g − mean(g) − x̂·mean(g ⊙ x̂)),  dw += Σ_rows dy ⊙ x̂,  db += Σ_rows dy
// dx is ACCUMULATED (dx += …): LayerNorms sit on the residual stream, whose gradient already holds the skip path.
// Statistics, and the saved mean and σ⁻¹, are in acc_t<T> (fp32 for the 16-bit types, as mixed precision keeps them).
#pragma once

#include "partrain/core/math.hpp"
#include "partrain/core/types.hpp"
#include "partrain/kernels/bias.hpp"

namespace partrain::kernels {

constexpr double kLayerNormEps = 1e-5;

/// x, y: [N, C]; w, b: [C]; mean, rstd: [N] saved for backward.
template <class T>
void layernorm_forward(const View2<T>& x, const View1<T>& w, const View1<T>& b, const View2<T>& y,
                       const View1<acc_t<T>>& mean, const View1<acc_t<T>>& rstd) {
  using A = acc_t<T>;
  const std::int64_t C = x.extent(1);
  Kokkos::parallel_for(
      "partrain::layernorm::forward", Kokkos::RangePolicy<ExecSpace>(0, x.extent(0)), KOKKOS_LAMBDA(std::int64_t n) {
        A m = 0;
        for (std::int64_t c = 0; c < C; ++c) m += A(x(n, c));
        m /= A(C);
        A v = 0;
        for (std::int64_t c = 0; c < C; ++c) {
          const A d = A(x(n, c)) - m;
          v += d * d;
        }
        v /= A(C);
        const A r = A(1) / kmath::sqrt(v + A(kLayerNormEps));
        for (std::int64_t c = 0; c < C; ++c) y(n, c) = (A(x(n, c)) - m) * r * A(w(c)) + A(b(c));
        mean(n) = m;
        rstd(n) = r;
      });
}

/// dx += …; dw += …; db += … (parameter gradients by columns: deterministic, no atomics).
template <class T>
void layernorm_backward(const View2<T>& dy, const View2<T>& x, const View1<T>& w, const View1<acc_t<T>>& mean,
                        const View1<acc_t<T>>& rstd, const View2<T>& dx, const View1<T>& dw, const View1<T>& db) {
  using A = acc_t<T>;
  const std::int64_t C = x.extent(1), N = x.extent(0);
  Kokkos::parallel_for(
      "partrain::layernorm::backward_input", Kokkos::RangePolicy<ExecSpace>(0, N), KOKKOS_LAMBDA(std::int64_t n) {
        const A m = mean(n), r = rstd(n);
        A g_mean = 0, gx_mean = 0;
        for (std::int64_t c = 0; c < C; ++c) {
          const A g = A(dy(n, c)) * A(w(c));
          g_mean += g;
          gx_mean += g * (A(x(n, c)) - m) * r;
        }
        g_mean /= A(C);
        gx_mean /= A(C);
        for (std::int64_t c = 0; c < C; ++c) {
          const A xh = (A(x(n, c)) - m) * r;
          dx(n, c) = A(dx(n, c)) + r * (A(dy(n, c)) * A(w(c)) - g_mean - xh * gx_mean);
        }
      });
  column_sums<T>("partrain::layernorm::backward_weight", N, C, dw, KOKKOS_LAMBDA(std::int64_t n, std::int64_t c) {
    return A(dy(n, c)) * (A(x(n, c)) - mean(n)) * rstd(n);
  });
  column_sums<T>("partrain::layernorm::backward_bias", N, C, db,
                 KOKKOS_LAMBDA(std::int64_t n, std::int64_t c) { return A(dy(n, c)); });
}

}  // namespace partrain::kernels
