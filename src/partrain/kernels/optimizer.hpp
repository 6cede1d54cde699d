// Optimizer steps on flat parameter / gradient buffers (PyTorch semantics, torch.optim).
//   SGD:   v = μ·v + (g + λ·p);  p −= lr·v          (μ = 0: p −= lr·(g + λ·p); no buffer needed)
//   Adam:  g' = g + λ·p (L2);    AdamW: p −= lr·λ·p first (decoupled), g' = g
//          m = β1·m + (1−β1)·g';  v = β2·v + (1−β2)·g'²
//          p −= lr · (m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε)         t = 1, 2, … (the step count)
#pragma once

#include <cmath>

#include "partrain/core/math.hpp"
#include "partrain/core/types.hpp"

namespace partrain::kernels {

struct SgdParams {
  double lr = 0.01, momentum = 0.0, weight_decay = 0.0;
};

struct AdamParams {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  bool decoupled = true;  ///< AdamW (true) or Adam with L2 (false)
};

/// momentum_buf may be empty when momentum = 0.
template <class T>
void sgd_step(const View1<T>& p, const View1<T>& g, const View1<T>& momentum_buf, const SgdParams& hp) {
  const T lr = T(hp.lr), mu = T(hp.momentum), wd = T(hp.weight_decay);
  if (hp.momentum == 0.0) {
    Kokkos::parallel_for(
        "partrain::sgd::step", Kokkos::RangePolicy<ExecSpace>(0, p.extent(0)),
        KOKKOS_LAMBDA(std::int64_t i) { p(i) -= lr * (g(i) + wd * p(i)); });
  } else {
    Kokkos::parallel_for(
        "partrain::sgd::step_momentum", Kokkos::RangePolicy<ExecSpace>(0, p.extent(0)),
        KOKKOS_LAMBDA(std::int64_t i) {
          const T v = mu * momentum_buf(i) + g(i) + wd * p(i);
          momentum_buf(i) = v;
          p(i) -= lr * v;
        });
  }
}

/// step: 1-based count of optimizer steps taken including this one.
template <class T>
void adam_step(const View1<T>& p, const View1<T>& g, const View1<T>& m, const View1<T>& v, const AdamParams& hp,
               std::int64_t step) {
  const T lr = T(hp.lr), b1 = T(hp.beta1), b2 = T(hp.beta2), eps = T(hp.eps), wd = T(hp.weight_decay);
  const T bc1 = T(1.0 - std::pow(hp.beta1, double(step))), bc2 = T(1.0 - std::pow(hp.beta2, double(step)));
  const bool decoupled = hp.decoupled;
  Kokkos::parallel_for(
      "partrain::adam::step", Kokkos::RangePolicy<ExecSpace>(0, p.extent(0)), KOKKOS_LAMBDA(std::int64_t i) {
        T grad = g(i);
        if (decoupled) p(i) -= lr * wd * p(i);
        else grad += wd * p(i);
        const T mi = b1 * m(i) + (T(1) - b1) * grad;
        const T vi = b2 * v(i) + (T(1) - b2) * grad * grad;
        m(i) = mi;
        v(i) = vi;
        p(i) -= lr * (mi / bc1) / (kmath::sqrt(vi / bc2) + eps);
      });
}

}  // namespace partrain::kernels
