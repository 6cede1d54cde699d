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

/// q: [T·B, H], keys: [S·B, H], lengths: [B]; probs: [T·B, S] (saved for backward), ctx: [T·B, H]. The scores are
/// computed again for the normaliser and the probabilities instead of being kept, so that a 16-bit `probs` holds
/// each probability rounded once (the softmax is in fp32: acc_t); fp32's results are the same either way.
template <class T>
void source_attention_forward(const View2<T>& q, const View2<T>& keys, const IndexView1& lengths, std::int64_t B,
                              const View2<T>& probs, const View2<T>& ctx) {
  using A = acc_t<T>;
  const std::int64_t H = q.extent(1), Tq = q.extent(0) / B, S = keys.extent(0) / B;
  const A scale = A(1) / kmath::sqrt(A(H));
  Kokkos::parallel_for(
      "partrain::source_attention::forward", Kokkos::RangePolicy<ExecSpace>(0, B), KOKKOS_LAMBDA(std::int64_t b) {
        const std::int64_t len = lengths(b);
        auto score = [&](std::int64_t r, std::int64_t s) {
          A e = 0;
          for (std::int64_t h = 0; h < H; ++h) e += A(q(r, h)) * A(keys(s * B + b, h));
          return e * scale;
        };
        for (std::int64_t t = 0; t < Tq; ++t) {
          const std::int64_t r = t * B + b;
          A m = A(-1e30);
          for (std::int64_t s = 0; s < len; ++s) {
            const A e = score(r, s);
            m = e > m ? e : m;
          }
          A z = 0;
          for (std::int64_t s = 0; s < len; ++s) z += kmath::exp(score(r, s) - m);
          for (std::int64_t s = 0; s < S; ++s) probs(r, s) = T(s < len ? kmath::exp(score(r, s) - m) / z : A(0));
          for (std::int64_t h = 0; h < H; ++h) {
            A c = 0;
            for (std::int64_t s = 0; s < len; ++s) c += A(probs(r, s)) * A(keys(s * B + b, h));
            ctx(r, h) = T(c);
          }
        }
      });
}

/// dq: [T·B, H] overwritten; dkeys: [S·B, H] accumulated.
template <class T>
void source_attention_backward(const View2<T>& dctx, const View2<T>& q, const View2<T>& keys,
                               const IndexView1& lengths, std::int64_t B, const View2<T>& probs, const View2<T>& dq,
                               const View2<T>& dkeys) {
  using A = acc_t<T>;
  const std::int64_t H = q.extent(1), Tq = q.extent(0) / B;
  const A scale = A(1) / kmath::sqrt(A(H));
  Kokkos::parallel_for(
      "partrain::source_attention::backward", Kokkos::RangePolicy<ExecSpace>(0, B), KOKKOS_LAMBDA(std::int64_t b) {
        const std::int64_t len = lengths(b);
        for (std::int64_t t = 0; t < Tq; ++t) {
          const std::int64_t r = t * B + b;
          A dot = 0;  // Σ_j a_j da_j
          for (std::int64_t s = 0; s < len; ++s) {
            A da = 0;
            for (std::int64_t h = 0; h < H; ++h) da += A(dctx(r, h)) * A(keys(s * B + b, h));
            dot += A(probs(r, s)) * da;
          }
          for (std::int64_t h = 0; h < H; ++h) dq(r, h) = T(0);
          for (std::int64_t s = 0; s < len; ++s) {
            const std::int64_t k = s * B + b;
            A da = 0;
            for (std::int64_t h = 0; h < H; ++h) da += A(dctx(r, h)) * A(keys(k, h));
            const A a = A(probs(r, s)), de = a * (da - dot) * scale;
            for (std::int64_t h = 0; h < H; ++h) {
              dq(r, h) = T(A(dq(r, h)) + de * A(keys(k, h)));
              dkeys(k, h) = T(A(dkeys(k, h)) + (a * A(dctx(r, h)) + de * A(q(r, h))));
            }
          }
        }
      });
}

}  // namespace partrain::kernels
