// Vocabulary-parallel softmax cross-entropy (Megatron-LM's): each rank of the group holds the logits of a contiguous
// block of V/t words for every row; the loss needs only three [N]-vectors reduced over the group — the row maxima
// (max), the target's logit (sum: only its owner contributes) and Σ exp(z − max) (sum) — so the full logits are
// never gathered. A negative target marks a padding row (the NMT model's): its loss and gradient are zero. The three
// vectors, the losses and the arithmetic are acc_t<T> (fp32 for the 16-bit types); only dz is stored in T.
// Used by partrain-tp's GPT head and by partrain-nmt's generator.
#pragma once

#include "partrain/core/math.hpp"
#include "partrain/kernels/cross_entropy.hpp"
#include "partrain/parallel/tp/mappings.hpp"

namespace partrain::parallel {

template <class T>
class VocabParallelLoss {
 public:
  /// Σ of the rows' losses (equal on every rank of the group); `losses` [N] per row; with dz, dz = scale·(softmax −
  /// onehot) for this rank's block (dz may alias z). Collective over tp.
  double operator()(TpContext& tp, const View2<T>& z, const IndexView1& targets, acc_t<T> scale, const View1<acc_t<T>>& losses,
                    const View2<T>* dz) {
    using A = acc_t<T>;
    const std::int64_t N = std::int64_t(z.extent(0)), Vl = std::int64_t(z.extent(1)), v0 = tp.rank() * Vl;
    sized(m_, "act/loss.max", N);
    sized(s_, "act/loss.sum", N);
    sized(zt_, "act/loss.target", N);
    auto m = m_, s = s_, zt = zt_;
    Kokkos::parallel_for(
        "partrain::vocab_parallel::max", Kokkos::RangePolicy<ExecSpace>(0, N), KOKKOS_LAMBDA(std::int64_t n) {
          A mx = z(n, 0);
          for (std::int64_t j = 1; j < Vl; ++j) mx = A(z(n, j)) > mx ? A(z(n, j)) : mx;
          m(n, 0) = mx;
          const std::int64_t id = targets(n) - v0;
          zt(n, 0) = targets(n) >= 0 && id >= 0 && id < Vl ? A(z(n, id)) : A(0);
        });
    tp_allreduce(tp, m, coll::ReduceOp::Max);
    tp_allreduce(tp, zt);
    Kokkos::parallel_for(
        "partrain::vocab_parallel::sum", Kokkos::RangePolicy<ExecSpace>(0, N), KOKKOS_LAMBDA(std::int64_t n) {
          A acc = 0;
          for (std::int64_t j = 0; j < Vl; ++j) acc += kmath::exp(A(z(n, j)) - m(n, 0));
          s(n, 0) = acc;
        });
    tp_allreduce(tp, s);
    Kokkos::parallel_for(
        "partrain::vocab_parallel::loss", Kokkos::RangePolicy<ExecSpace>(0, N), KOKKOS_LAMBDA(std::int64_t n) {
          losses(n) = targets(n) < 0 ? A(0) : kmath::log(s(n, 0)) + m(n, 0) - zt(n, 0);
        });
    if (dz) {
      const View2<T> d = *dz;
      Kokkos::parallel_for(
          "partrain::vocab_parallel::grad", Kokkos::RangePolicy<ExecSpace>(0, N), KOKKOS_LAMBDA(std::int64_t n) {
            const bool pad = targets(n) < 0;
            const A inv = A(1) / s(n, 0);
            const std::int64_t id = targets(n) - v0;
            const bool own = !pad && id >= 0 && id < Vl;
            const A zy = own ? A(z(n, id)) : A(0);  // read before dz overwrites the logits (dz may alias them)
            for (std::int64_t j = 0; j < Vl; ++j) d(n, j) = pad ? A(0) : scale * kmath::exp(A(z(n, j)) - m(n, 0)) * inv;
            if (own) d(n, id) = scale * kmath::exp(zy - m(n, 0)) * inv - scale;
          });
    }
    return kernels::cross_entropy_sum(losses);
  }

 private:
  static void sized(View2<acc_t<T>>& v, const char* label, std::int64_t n) {
    if (std::int64_t(v.extent(0)) != n) v = View2<acc_t<T>>(std::string(label), n, 1);
  }
  View2<acc_t<T>> m_, s_, zt_;  ///< [N, 1] row max, sum of exponentials, target logit
};

}  // namespace partrain::parallel
