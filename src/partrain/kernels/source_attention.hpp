// Attention of a decoder over an encoder's outputs (the NMT model's), scaled dot-product scoring, masked to each
// source sentence's length. Rows are time-major: row t·B + b is time t of sample b.
//   q[t,b] ∈ R^H (the bottom decoder layer's output), K[s,b] ∈ R^H (the top encoder layer's output, keys = values)
//   e[t,b,s] = q[t,b]·K[s,b] / √H  for s < len_b;   a[t,b,·] = softmax_s e[t,b,·] (0 for s ≥ len_b)
//   ctx[t,b] = Σ_s a[t,b,s] K[s,b]
// Backward, given dctx:
//   da_s = dctx·K[s,b];   de_s = a_s (da_s − Σ_j a_j da_j)
//   dq = Σ_s de_s K[s,b] / √H;   dK[s,b] += a_s dctx + de_s q / √H   (summed over every t)
// The kernels run one sample per thread (the t loop inside), so the sum over t into dK needs no atomics.
#pragma once

#include "partrain/core/math.hpp"
#include "partrain/core/types.hpp"

namespace partrain::kernels {

/// q: [T·B, H], keys: [S·B, H], lengths: [B]; probs: [T·B, S] (saved for backward), ctx: [T·B, H].
template <class T>
void source_attention_forward(const View2<T>& q, const View2<T>& keys, const IndexView1& lengths, std::int64_t B,
                              const View2<T>& probs, const View2<T>& ctx) {
  const std::int64_t H = q.extent(1), Tq = q.extent(0) / B, S = keys.extent(0) / B;
  const T scale = T(1) / kmath::sqrt(T(H));
  Kokkos::parallel_for(
      "partrain::source_attention::forward", Kokkos::RangePolicy<ExecSpace>(0, B), KOKKOS_LAMBDA(std::int64_t b) {
        const std::int64_t len = lengths(b);
        for (std::int64_t t = 0; t < Tq; ++t) {
          const std::int64_t r = t * B + b;
          T m = T(-1e30);
          for (std::int64_t s = 0; s < S; ++s) {
            T e = 0;
            if (s < len) {
              for (std::int64_t h = 0; h < H; ++h) e += q(r, h) * keys(s * B + b, h);
              e *= scale;
              m = e > m ? e : m;
            }
            probs(r, s) = e;
          }
          T z = 0;
          for (std::int64_t s = 0; s < S; ++s) {
            const T p = s < len ? kmath::exp(probs(r, s) - m) : T(0);
            probs(r, s) = p;
            z += p;
          }
          for (std::int64_t s = 0; s < S; ++s) probs(r, s) /= z;
          for (std::int64_t h = 0; h < H; ++h) {
            T c = 0;
            for (std::int64_t s = 0; s < len; ++s) c += probs(r, s) * keys(s * B + b, h);
            ctx(r, h) = c;
          }
        }
      });
}

/// dq: [T·B, H] overwritten; dkeys: [S·B, H] accumulated.
template <class T>
void source_attention_backward(const View2<T>& dctx, const View2<T>& q, const View2<T>& keys,
                               const IndexView1& lengths, std::int64_t B, const View2<T>& probs, const View2<T>& dq,
                               const View2<T>& dkeys) {
  const std::int64_t H = q.extent(1), Tq = q.extent(0) / B;
  const T scale = T(1) / kmath::sqrt(T(H));
  Kokkos::parallel_for(
      "partrain::source_attention::backward", Kokkos::RangePolicy<ExecSpace>(0, B), KOKKOS_LAMBDA(std::int64_t b) {
        const std::int64_t len = lengths(b);
        for (std::int64_t t = 0; t < Tq; ++t) {
          const std::int64_t r = t * B + b;
          T dot = 0;  // Σ_j a_j da_j
          for (std::int64_t s = 0; s < len; ++s) {
            T da = 0;
            for (std::int64_t h = 0; h < H; ++h) da += dctx(r, h) * keys(s * B + b, h);
            dot += probs(r, s) * da;
          }
          for (std::int64_t h = 0; h < H; ++h) dq(r, h) = T(0);
          for (std::int64_t s = 0; s < len; ++s) {
            const std::int64_t k = s * B + b;
            T da = 0;
            for (std::int64_t h = 0; h < H; ++h) da += dctx(r, h) * keys(k, h);
            const T a = probs(r, s), de = a * (da - dot) * scale;
            for (std::int64_t h = 0; h < H; ++h) {
              dq(r, h) += de * keys(k, h);
              dkeys(k, h) += a * dctx(r, h) + de * q(r, h);
            }
          }
        }
      });
}

}  // namespace partrain::kernels
