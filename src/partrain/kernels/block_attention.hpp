// Causal attention of one head computed block by block, with the online (log-sum-exp) softmax — what ring attention
// (context parallelism, docs/cp.md) runs as the key/value blocks of a sequence travel around the ranks. A query block
// Q [Tq, d] holds positions q0 … q0 + Tq − 1 of the sequence, a key block K, V [Tk, d] positions k0 … k0 + Tk − 1;
// key j is visible to query i when k0 + j ≤ q0 + i (a block of later keys is fully masked and changes nothing).
//
// Forward, for each key block in any order, per query row i (m_i the running maximum, l_i the running sum of
// exponentials, O_i the unnormalised output; m = −∞, l = 0, O = 0 before the first block):
//   S = scale·Q·Kᵀ;  m' = max(m_i, max_j S_ij);  c = exp(m_i − m');  P_ij = exp(S_ij − m')
//   l_i ← c·l_i + Σ_j P_ij;  O_i ← c·O_i + Σ_j P_ij·V_j;  m_i ← m'
// then block_attention_finish: O_i ← O_i / l_i and lse_i = m_i + log l_i (what the backward needs).
// Backward (FlashAttention's), for each key block, with D_i = Σ_c dO_ic·O_ic:
//   P_ij = exp(S_ij − lse_i);  dV += Pᵀ·dO;  dP = dO·Vᵀ;  dS = P ⊙ (dP − D);  dQ += scale·dS·K;  dK += scale·dSᵀ·Q
// The products are gemms; the mask and the exponentials are row kernels in acc_t<T>.
#pragma once

#include <cmath>
#include <limits>

#include "partrain/core/math.hpp"
#include "partrain/core/types.hpp"
#include "partrain/kernels/gemm.hpp"

namespace partrain::kernels {

/// The running state of one query block's online softmax: m, l [Tq] (acc_t), O [Tq, d].
template <class T>
struct OnlineSoftmax {
  View1<acc_t<T>> m, l;
  View2<T> o;
  OnlineSoftmax() = default;
  OnlineSoftmax(const std::string& prefix, std::int64_t Tq, std::int64_t d)
      : m(prefix + ".m", Tq), l(prefix + ".l", Tq), o(prefix + ".o", Tq, d) {}
};

/// m = −∞, l = 0, O = 0.
template <class T>
void block_attention_begin(const OnlineSoftmax<T>& st) {
  using A = acc_t<T>;
  auto m = st.m;
  Kokkos::parallel_for("partrain::block_attention::begin", Kokkos::RangePolicy<ExecSpace>(0, m.extent(0)),
                       KOKKOS_LAMBDA(std::int64_t i) { m(i) = -std::numeric_limits<A>::infinity(); });
  Kokkos::deep_copy(st.l, acc_t<T>(0));
  Kokkos::deep_copy(st.o, T(0));
}

/// Folds key block (K, V at positions k0 …) into the state of query block Q (positions q0 …). `s` is scratch
/// [Tq, Tk] (it ends holding the block's exponentials).
template <class T>
void block_attention_step(const View2<T>& Q, const View2<T>& K, const View2<T>& V, std::int64_t q0, std::int64_t k0,
                          const OnlineSoftmax<T>& st, const View2<T>& s) {
  using A = acc_t<T>;
  const std::int64_t Tq = Q.extent(0), Tk = K.extent(0), d = Q.extent(1);
  if (k0 > q0 + Tq - 1) return;  // every key after every query: fully masked
  const A scale = A(1) / A(std::sqrt(double(d)));
  gemm<T>('N', 'T', scale, Q, K, 0, s);
  auto m = st.m, l = st.l;
  auto o = st.o;
  Kokkos::parallel_for(
      "partrain::block_attention::online_softmax", Kokkos::RangePolicy<ExecSpace>(0, Tq), KOKKOS_LAMBDA(std::int64_t i) {
        const std::int64_t visible = q0 + i - k0 + 1;  // keys 0 … visible − 1 of the block
        const std::int64_t nv = visible < 0 ? 0 : (visible > Tk ? Tk : visible);
        if (nv == 0) {
          for (std::int64_t j = 0; j < Tk; ++j) s(i, j) = T(0);
          return;
        }
        A mx = m(i);
        for (std::int64_t j = 0; j < nv; ++j) mx = A(s(i, j)) > mx ? A(s(i, j)) : mx;
        const A c = kmath::exp(m(i) - mx);  // exp(−∞) = 0 on the first visible block
        A sum = 0;
        for (std::int64_t j = 0; j < nv; ++j) {
          const A e = kmath::exp(A(s(i, j)) - mx);
          s(i, j) = T(e);
          sum += e;
        }
        for (std::int64_t j = nv; j < Tk; ++j) s(i, j) = T(0);
        l(i) = c * l(i) + sum;
        m(i) = mx;
        for (std::int64_t x = 0; x < d; ++x) o(i, x) = T(c * A(o(i, x)));
      });
  gemm<T>('N', 'N', 1, s, V, 1, o);
}

/// O ← O / l; lse = m + log l.
template <class T>
void block_attention_finish(const OnlineSoftmax<T>& st, const View1<acc_t<T>>& lse) {
  using A = acc_t<T>;
  auto m = st.m, l = st.l;
  auto o = st.o;
  const std::int64_t d = o.extent(1);
  Kokkos::parallel_for(
      "partrain::block_attention::finish", Kokkos::RangePolicy<ExecSpace>(0, o.extent(0)), KOKKOS_LAMBDA(std::int64_t i) {
        const A inv = A(1) / l(i);
        for (std::int64_t x = 0; x < d; ++x) o(i, x) = T(A(o(i, x)) * inv);
        lse(i) = m(i) + kmath::log(l(i));
      });
}

/// D_i = Σ_c dO_ic·O_ic.
template <class T>
void block_attention_delta(const View2<T>& dout, const View2<T>& out, const View1<acc_t<T>>& delta) {
  using A = acc_t<T>;
  const std::int64_t d = out.extent(1);
  Kokkos::parallel_for(
      "partrain::block_attention::delta", Kokkos::RangePolicy<ExecSpace>(0, out.extent(0)), KOKKOS_LAMBDA(std::int64_t i) {
        A v = 0;
        for (std::int64_t x = 0; x < d; ++x) v += A(dout(i, x)) * A(out(i, x));
        delta(i) = v;
      });
}

/// The gradients one key block gets from one query block, ACCUMULATED into dQ, dK, dV. `s`, `dp`: scratch [Tq, Tk].
template <class T>
void block_attention_backward(const View2<T>& Q, const View2<T>& K, const View2<T>& V, const View2<T>& dout,
                              const View1<acc_t<T>>& lse, const View1<acc_t<T>>& delta, std::int64_t q0, std::int64_t k0,
                              const View2<T>& dQ, const View2<T>& dK, const View2<T>& dV, const View2<T>& s,
                              const View2<T>& dp) {
  using A = acc_t<T>;
  const std::int64_t Tq = Q.extent(0), Tk = K.extent(0), d = Q.extent(1);
  if (k0 > q0 + Tq - 1) return;
  const A scale = A(1) / A(std::sqrt(double(d)));
  gemm<T>('N', 'T', scale, Q, K, 0, s);
  Kokkos::parallel_for(
      "partrain::block_attention::probabilities", Kokkos::RangePolicy<ExecSpace>(0, Tq), KOKKOS_LAMBDA(std::int64_t i) {
        const std::int64_t visible = q0 + i - k0 + 1;
        for (std::int64_t j = 0; j < Tk; ++j) s(i, j) = j < visible ? T(kmath::exp(A(s(i, j)) - lse(i))) : T(0);
      });
  gemm<T>('T', 'N', 1, s, dout, 1, dV);  // dV += Pᵀ·dO
  gemm<T>('N', 'T', 1, dout, V, 0, dp);  // dP = dO·Vᵀ
  Kokkos::parallel_for(
      "partrain::block_attention::dscores", Kokkos::RangePolicy<ExecSpace>(0, Tq), KOKKOS_LAMBDA(std::int64_t i) {
        for (std::int64_t j = 0; j < Tk; ++j) dp(i, j) = T(A(s(i, j)) * (A(dp(i, j)) - delta(i)));
      });
  gemm<T>('N', 'N', scale, dp, K, 1, dQ);  // dQ += scale·dS·K
  gemm<T>('T', 'N', scale, dp, Q, 1, dK);  // dK += scale·dSᵀ·Q
}

}  // namespace partrain::kernels
