// Optimizer steps on flat parameter / gradient buffers (PyTorch semantics, torch.optim).
//   SGD:   v = μ·v + (g + λ·p);  p −= lr·v          (μ = 0: p −= lr·(g + λ·p); no buffer needed)
//   Adam:  g' = g + λ·p (L2);    AdamW: p −= lr·λ·p first (decoupled), g' = g
//          m = β1·m + (1−β1)·g';  v = β2·v + (1−β2)·g'²
//          p −= lr · (m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε)         t = 1, 2, … (the step count)
//   AdaGrad: g' = g + λ·p;  s += g'²;  p −= lr · g' / (√s + ε)   (torch.optim.Adagrad with lr_decay 0 and an initial
//          accumulator of 0: an element whose gradient is 0 does not move, so updating only the rows a sparse batch
//          touched — a sparse parameter server's lazy rows — is the dense update exactly, without weight decay)
// Mixed precision (Megatron's and DeepSpeed's mixed-precision optimizers, fused): p is the fp32 master copy, the
// gradient a 16-bit view read as g·grad_scale (1/loss scale) in fp32, and `copy_to` (a 16-bit view, or empty) receives
// the updated parameter with one rounding — the model's 16-bit weights refreshed in the same pass.
#pragma once

#include <cmath>

#include "partrain/core/math.hpp"
#include "partrain/core/types.hpp"
#include "partrain/kernels/pointwise.hpp"

namespace partrain::kernels {

struct SgdParams {
  double lr = 0.01, momentum = 0.0, weight_decay = 0.0;
};

struct AdamParams {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  bool decoupled = true;  ///< AdamW (true) or Adam with L2 (false)
};

struct AdagradParams {
  double lr = 1e-2, eps = 1e-10, weight_decay = 0.0;
};

/// momentum_buf may be empty when momentum = 0. Views of one memory space (the default one, or the host's for an
/// optimizer offloaded to host memory); the update runs in that space's execution space.
template <class V, class G = V, class Out = V>
void sgd_step(const V& p, const G& g, const V& momentum_buf, const SgdParams& hp,
              typename V::non_const_value_type grad_scale = 1, const Out& copy_to = Out()) {
  using T = typename V::non_const_value_type;
  using Exec = typename V::execution_space;
  const T lr = T(hp.lr), mu = T(hp.momentum), wd = T(hp.weight_decay), gs = grad_scale;
  auto* out = copy_to.data();
  if (hp.momentum == 0.0) {
    pointwise<Exec>("partrain::sgd::step", p.extent(0), KOKKOS_LAMBDA(std::int64_t i0, std::int64_t i1) {
      T* pp = p.data();
      const auto* gp = g.data();
      for (std::int64_t i = i0; i < i1; ++i) {
        pp[i] -= lr * (T(gp[i]) * gs + wd * pp[i]);
        if (out) out[i] = pp[i];
      }
    });
  } else {
    pointwise<Exec>("partrain::sgd::step_momentum", p.extent(0), KOKKOS_LAMBDA(std::int64_t i0, std::int64_t i1) {
      T* pp = p.data();
      T* bp = momentum_buf.data();
      const auto* gp = g.data();
      for (std::int64_t i = i0; i < i1; ++i) {
        const T v = mu * bp[i] + T(gp[i]) * gs + wd * pp[i];
        bp[i] = v;
        pp[i] -= lr * v;
        if (out) out[i] = pp[i];
      }
    });
  }
}

/// step: 1-based count of optimizer steps taken including this one.
template <class V, class G = V, class Out = V>
void adam_step(const V& p, const G& g, const V& m, const V& v, const AdamParams& hp, std::int64_t step,
               typename V::non_const_value_type grad_scale = 1, const Out& copy_to = Out()) {
  using T = typename V::non_const_value_type;
  using Exec = typename V::execution_space;
  const T lr = T(hp.lr), b1 = T(hp.beta1), b2 = T(hp.beta2), eps = T(hp.eps), wd = T(hp.weight_decay);
  const T bc1 = T(1.0 - std::pow(hp.beta1, double(step))), bc2 = T(1.0 - std::pow(hp.beta2, double(step)));
  const bool decoupled = hp.decoupled;
  const T gs = grad_scale;
  auto* out = copy_to.data();
  pointwise<Exec>("partrain::adam::step", p.extent(0), KOKKOS_LAMBDA(std::int64_t i0, std::int64_t i1) {
    T* pp = p.data();
    T* mp = m.data();
    T* vp = v.data();
    const auto* gp = g.data();
    for (std::int64_t i = i0; i < i1; ++i) {
      T grad = T(gp[i]) * gs;
      if (decoupled) pp[i] -= lr * wd * pp[i];
      else grad += wd * pp[i];
      const T mi = b1 * mp[i] + (T(1) - b1) * grad;
      const T vi = b2 * vp[i] + (T(1) - b2) * grad * grad;
      mp[i] = mi;
      vp[i] = vi;
      pp[i] -= lr * (mi / bc1) / (kmath::sqrt(vi / bc2) + eps);
      if (out) out[i] = pp[i];
    }
  });
}

/// AdaGrad; `sum` is the accumulator of squared gradients.
template <class V, class G = V, class Out = V>
void adagrad_step(const V& p, const G& g, const V& sum, const AdagradParams& hp,
                  typename V::non_const_value_type grad_scale = 1, const Out& copy_to = Out()) {
  using T = typename V::non_const_value_type;
  using Exec = typename V::execution_space;
  const T lr = T(hp.lr), eps = T(hp.eps), wd = T(hp.weight_decay), gs = grad_scale;
  auto* out = copy_to.data();
  pointwise<Exec>("partrain::adagrad::step", p.extent(0), KOKKOS_LAMBDA(std::int64_t i0, std::int64_t i1) {
    T* pp = p.data();
    T* sp = sum.data();
    const auto* gp = g.data();
    for (std::int64_t i = i0; i < i1; ++i) {
      const T grad = T(gp[i]) * gs + wd * pp[i];
      const T si = sp[i] + grad * grad;
      sp[i] = si;
      pp[i] -= lr * grad / (kmath::sqrt(si) + eps);
      if (out) out[i] = pp[i];
    }
  });
}

/// Elements of g that are inf or NaN (a 16-bit gradient after an overflow; the loss scaler's check).
template <class G>
std::int64_t nonfinite_count(const G& g) {
  using Exec = typename G::execution_space;
  std::int64_t n = 0;
  Kokkos::parallel_reduce(
      "partrain::optimizer::nonfinite", Kokkos::RangePolicy<Exec>(0, g.extent(0)),
      KOKKOS_LAMBDA(std::int64_t i, std::int64_t & acc) {
        const float x = float(g(i));
        acc += (x - x) != 0.0f ? 1 : 0;  // inf − inf and NaN − NaN are NaN; finite − itself is 0
      },
      n);
  return n;
}

}  // namespace partrain::kernels
