// Fused softmax cross-entropy, numerically stable, one pass per row:
//   loss[n]      = log Σ_j exp(z[n, j] − m) + m − z[n, y_n],   m = max_j z[n, j]
//   dz[n, j]     = scale · (softmax(z)[n, j] − [j = y_n])
// `scale` is 1/(global batch rows): the loss is the MEAN over the global batch, so every rank and microbatch
// scales by the same global count (a sum instead of a mean is a classic bug). dz may alias z (in place).
// A negative target marks a padding row (the NMT model's): its loss and its gradient are zero.
// Everything is computed in acc_t<T> and the losses are stored in it (fp32 for the 16-bit types); only dz is stored
// in T. Mixed precision passes scale = loss scale / rows, so that small gradients survive the 16-bit store.
#pragma once

#include "partrain/core/math.hpp"
#include "partrain/core/types.hpp"

namespace partrain::kernels {

/// losses[n] = per-row loss; returns nothing (sum on the host with cross_entropy_sum).
template <class T>
void cross_entropy_forward(const View2<T>& logits, const IndexView1& targets, const View1<acc_t<T>>& losses) {
  using A = acc_t<T>;
  const std::int64_t V = logits.extent(1);
  Kokkos::parallel_for(
      "partrain::cross_entropy::forward", Kokkos::RangePolicy<ExecSpace>(0, logits.extent(0)),
      KOKKOS_LAMBDA(std::int64_t n) {
        if (targets(n) < 0) {
          losses(n) = A(0);
          return;
        }
        A m = logits(n, 0);
        for (std::int64_t j = 1; j < V; ++j) m = A(logits(n, j)) > m ? A(logits(n, j)) : m;
        A s = 0;
        for (std::int64_t j = 0; j < V; ++j) s += kmath::exp(A(logits(n, j)) - m);
        losses(n) = kmath::log(s) + m - A(logits(n, targets(n)));
      });
}

/// Forward and backward together: losses[n] and dlogits (may alias logits).
template <class T>
void cross_entropy_forward_backward(const View2<T>& logits, const IndexView1& targets, acc_t<T> scale,
                                    const View1<acc_t<T>>& losses, const View2<T>& dlogits) {
  using A = acc_t<T>;
  const std::int64_t V = logits.extent(1);
  Kokkos::parallel_for(
      "partrain::cross_entropy::forward_backward", Kokkos::RangePolicy<ExecSpace>(0, logits.extent(0)),
      KOKKOS_LAMBDA(std::int64_t n) {
        const int y = targets(n);
        if (y < 0) {
          losses(n) = A(0);
          for (std::int64_t j = 0; j < V; ++j) dlogits(n, j) = T(0);
          return;
        }
        A m = logits(n, 0);
        for (std::int64_t j = 1; j < V; ++j) m = A(logits(n, j)) > m ? A(logits(n, j)) : m;
        A s = 0;
        for (std::int64_t j = 0; j < V; ++j) s += kmath::exp(A(logits(n, j)) - m);
        losses(n) = kmath::log(s) + m - A(logits(n, y));
        const A inv = A(1) / s;
        const A zy = A(logits(n, y));  // read before dz overwrites the logits (dz may alias them)
        for (std::int64_t j = 0; j < V; ++j) dlogits(n, j) = scale * (kmath::exp(A(logits(n, j)) - m) * inv);
        dlogits(n, y) = scale * (kmath::exp(zy - m) * inv) - scale;
      });
}

/// Σ_n losses[n], accumulated in double.
template <class L>
double cross_entropy_sum(const Kokkos::View<L*, Kokkos::LayoutRight, MemSpace>& losses) {
  double total = 0;
  Kokkos::parallel_reduce(
      "partrain::cross_entropy::sum", Kokkos::RangePolicy<ExecSpace>(0, losses.extent(0)),
      KOKKOS_LAMBDA(std::int64_t n, double& acc) { acc += double(losses(n)); }, total);
  return total;
}

}  // namespace partrain::kernels
