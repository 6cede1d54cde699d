// Causal multi-head self-attention on a fused qkv activation (GPT-2):
//   qkv: [B, T, 3C], rows q | k | v; head h takes columns h·d … (h+1)·d of each (d = C/H).
//   S = q_h·k_hᵀ/√d  [T, T];  P = softmax(S) with keys j > t masked;  y_h = P·v_h;  out[b, t, h·d + i] = y_h[t, i].
// Backward, per (b, h), with dY = dout's head slice:
//   dP = dY·v_hᵀ;  dv_h = Pᵀ·dY;  dS = P ⊙ (dP − rowsum(dP ⊙ P))/√d;  dq_h = dS·k_h;  dk_h = dSᵀ·q_h
// The products are gemms on head-major copies [B, H, T, d] (contiguous per head), as PyTorch's bmm does.
// FLOPs forward: 4·B·H·T²·d (two T×T×d products, the masked half computed too), backward twice that.
#pragma once

#include <cmath>

#include "partrain/core/types.hpp"
#include "partrain/kernels/gemm.hpp"
#include "partrain/kernels/softmax.hpp"

namespace partrain::kernels {

/// Saved activations and scratch of one attention call (one microbatch).
template <class T>
struct AttentionState {
  View4<T> q, k, v;  ///< [B, H, T, d] head-major copies of qkv
  View4<T> att;      ///< [B, H, T, T] probabilities P
  View4<T> y;        ///< [B, H, T, d] head outputs; reused as dY in backward
  View2<T> dp;       ///< [T, T] scratch for dP / dS
  View2<T> dq;       ///< [T, d] scratch for one head's dq

  AttentionState() = default;
  AttentionState(const std::string& prefix, std::int64_t B, std::int64_t T_, std::int64_t H, std::int64_t d)
      : q(prefix + ".q", B, H, T_, d),
        k(prefix + ".k", B, H, T_, d),
        v(prefix + ".v", B, H, T_, d),
        att(prefix + ".att", B, H, T_, T_),
        y(prefix + ".y", B, H, T_, d),
        dp(prefix + ".dp", T_, T_),
        dq(prefix + ".dq", T_, d) {}
};

template <class T>
View2<T> head_slice(const View4<T>& x, std::int64_t b, std::int64_t h) {
  // pointer arithmetic, not x(b, h, 0, 0): the view may live in device memory
  const std::int64_t slice = std::int64_t(x.extent(2) * x.extent(3));
  return View2<T>(x.data() + (b * std::int64_t(x.extent(1)) + h) * slice, x.extent(2), x.extent(3));
}

/// out: [B, T, C].
template <class T>
void attention_forward(const View3<T>& qkv, const View3<T>& out, std::int64_t n_head, AttentionState<T>& st) {
  const std::int64_t B = qkv.extent(0), Tn = qkv.extent(1), C = qkv.extent(2) / 3, d = C / n_head;
  auto q = st.q, k = st.k, v = st.v;
  Kokkos::parallel_for(
      "partrain::attention::split_heads", Kokkos::RangePolicy<ExecSpace>(0, B * Tn), KOKKOS_LAMBDA(std::int64_t bt) {
        const std::int64_t b = bt / Tn, t = bt % Tn;
        for (std::int64_t h = 0; h < n_head; ++h)
          for (std::int64_t i = 0; i < d; ++i) {
            q(b, h, t, i) = qkv(b, t, h * d + i);
            k(b, h, t, i) = qkv(b, t, C + h * d + i);
            v(b, h, t, i) = qkv(b, t, 2 * C + h * d + i);
          }
      });
  const acc_t<T> scale = acc_t<T>(1) / acc_t<T>(std::sqrt(double(d)));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < n_head; ++h) {
      auto P = head_slice(st.att, b, h);
      gemm<T>('N', 'T', scale, head_slice(q, b, h), head_slice(k, b, h), 0, P);
      softmax_forward(P, P, 0);
      gemm<T>('N', 'N', 1, P, head_slice(v, b, h), 0, head_slice(st.y, b, h));
    }
  auto y = st.y;
  Kokkos::parallel_for(
      "partrain::attention::merge_heads", Kokkos::RangePolicy<ExecSpace>(0, B * Tn), KOKKOS_LAMBDA(std::int64_t bt) {
        const std::int64_t b = bt / Tn, t = bt % Tn;
        for (std::int64_t h = 0; h < n_head; ++h)
          for (std::int64_t i = 0; i < d; ++i) out(b, t, h * d + i) = y(b, h, t, i);
      });
}

/// dqkv: [B, T, 3C] (overwritten). Consumes the state: q, k, v are overwritten by their gradients head by head
/// (each is dead once its head's products are done), so backward allocates nothing.
template <class T>
void attention_backward(const View3<T>& dout, const View3<T>& dqkv, std::int64_t n_head, AttentionState<T>& st) {
  const std::int64_t B = dout.extent(0), Tn = dout.extent(1), C = dout.extent(2), d = C / n_head;
  auto dy = st.y;
  Kokkos::parallel_for(
      "partrain::attention::split_dout", Kokkos::RangePolicy<ExecSpace>(0, B * Tn), KOKKOS_LAMBDA(std::int64_t bt) {
        const std::int64_t b = bt / Tn, t = bt % Tn;
        for (std::int64_t h = 0; h < n_head; ++h)
          for (std::int64_t i = 0; i < d; ++i) dy(b, h, t, i) = dout(b, t, h * d + i);
      });
  const acc_t<T> scale = acc_t<T>(1) / acc_t<T>(std::sqrt(double(d)));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < n_head; ++h) {
      auto P = head_slice(st.att, b, h);
      auto dY = head_slice(dy, b, h);
      auto q = head_slice(st.q, b, h), k = head_slice(st.k, b, h), v = head_slice(st.v, b, h);
      gemm<T>('N', 'T', 1, dY, v, 0, st.dp);      // dP = dY·vᵀ
      gemm<T>('T', 'N', 1, P, dY, 0, v);          // dv = Pᵀ·dY   (v is dead)
      softmax_backward(P, st.dp, st.dp);         // dS
      gemm<T>('N', 'N', scale, st.dp, k, 0, st.dq);  // dq = dS·k/√d
      gemm<T>('T', 'N', scale, st.dp, q, 0, k);      // dk = dSᵀ·q/√d (k is dead)
      Kokkos::deep_copy(q, st.dq);
    }
  auto dq = st.q, dk = st.k, dv = st.v;
  Kokkos::parallel_for(
      "partrain::attention::merge_dqkv", Kokkos::RangePolicy<ExecSpace>(0, B * Tn), KOKKOS_LAMBDA(std::int64_t bt) {
        const std::int64_t b = bt / Tn, t = bt % Tn;
        for (std::int64_t h = 0; h < n_head; ++h)
          for (std::int64_t i = 0; i < d; ++i) {
            dqkv(b, t, h * d + i) = dq(b, h, t, i);
            dqkv(b, t, C + h * d + i) = dk(b, h, t, i);
            dqkv(b, t, 2 * C + h * d + i) = dv(b, h, t, i);
          }
      });
}

inline double attention_forward_flops(double B, double T, double C) { return 4.0 * B * T * T * C; }

}  // namespace partrain::kernels
