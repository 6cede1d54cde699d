// Embedding lookup and its backward.
//   forward:  out[n, :] = table[ids[n], :]            (+ pos[n mod T, :] when a position table is given)
//   backward: dtable[ids[n], :] += dout[n, :];  dpos[t, :] += Σ_{n mod T = t} dout[n, :]
// The backward scatter-add runs in parallel over columns, each column summing its rows in order: deterministic
// and free of atomics (several rows may share a token id). 16-bit gradients are summed in fp32 (a scratch table for
// the token table, counted as activation memory) and stored with one rounding per element and call.
#pragma once

#include "partrain/core/types.hpp"

namespace partrain::kernels {

/// ids: [N]; table: [V, C]; out: [N, C].
template <class T>
void embedding_forward(const IndexView1& ids, const View2<T>& table, const View2<T>& out) {
  const std::int64_t C = table.extent(1);
  Kokkos::parallel_for(
      "partrain::embedding::forward", Kokkos::RangePolicy<ExecSpace>(0, ids.extent(0)), KOKKOS_LAMBDA(std::int64_t n) {
        const int id = ids(n);
        for (std::int64_t c = 0; c < C; ++c) out(n, c) = table(id, c);
      });
}

/// out[n, :] += pos[n mod T, :]; pos: [T, C].
template <class T>
void position_add(const View2<T>& out, const View2<T>& pos) {
  const std::int64_t C = pos.extent(1), Tn = pos.extent(0);
  Kokkos::parallel_for(
      "partrain::embedding::position_add", Kokkos::RangePolicy<ExecSpace>(0, out.extent(0)),
      KOKKOS_LAMBDA(std::int64_t n) {
        const std::int64_t t = n % Tn;
        for (std::int64_t c = 0; c < C; ++c) out(n, c) = acc_t<T>(out(n, c)) + acc_t<T>(pos(t, c));
      });
}

/// dtable += scatter of dout by ids.
template <class T>
void embedding_backward(const IndexView1& ids, const View2<T>& dout, const View2<T>& dtable) {
  const std::int64_t N = ids.extent(0);
  if constexpr (is_half_v<T>) {
    View2<float> sum("act/embedding.grad_fp32", dtable.extent(0), dtable.extent(1));
    Kokkos::parallel_for(
        "partrain::embedding::backward_fp32", Kokkos::RangePolicy<ExecSpace>(0, dtable.extent(1)),
        KOKKOS_LAMBDA(std::int64_t c) {
          for (std::int64_t n = 0; n < N; ++n) sum(ids(n), c) += float(dout(n, c));
          for (std::int64_t v = 0; v < std::int64_t(sum.extent(0)); ++v)
            if (sum(v, c) != 0.0f) dtable(v, c) = float(dtable(v, c)) + sum(v, c);
        });
  } else {
    Kokkos::parallel_for(
        "partrain::embedding::backward", Kokkos::RangePolicy<ExecSpace>(0, dtable.extent(1)),
        KOKKOS_LAMBDA(std::int64_t c) {
          for (std::int64_t n = 0; n < N; ++n) dtable(ids(n), c) += dout(n, c);
        });
  }
}

/// dpos += Σ over sequences of dout; dpos: [T, C]. (Two kernels rather than `if constexpr` inside one: nvcc refuses a
/// device lambda whose first capture of a variable sits in a constexpr-if.)
template <class T>
void position_backward(const View2<T>& dout, const View2<T>& dpos) {
  const std::int64_t Tn = dpos.extent(0), C = dpos.extent(1), N = dout.extent(0);
  if constexpr (is_half_v<T>) {  // each element's sum in fp32, stored once
    Kokkos::parallel_for(
        "partrain::embedding::position_backward_fp32", Kokkos::RangePolicy<ExecSpace>(0, Tn), KOKKOS_LAMBDA(std::int64_t t) {
          for (std::int64_t c = 0; c < C; ++c) {
            float s = dpos(t, c);
            for (std::int64_t n = t; n < N; n += Tn) s += float(dout(n, c));
            dpos(t, c) = s;
          }
        });
  } else {
    Kokkos::parallel_for(
        "partrain::embedding::position_backward", Kokkos::RangePolicy<ExecSpace>(0, Tn), KOKKOS_LAMBDA(std::int64_t t) {
          for (std::int64_t n = t; n < N; n += Tn)
            for (std::int64_t c = 0; c < C; ++c) dpos(t, c) += dout(n, c);
        });
  }
}

}  // namespace partrain::kernels
