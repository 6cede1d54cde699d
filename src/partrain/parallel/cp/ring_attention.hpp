// Ring attention (Megatron-Core's context parallelism, docs/cp.md). Every rank holds two chunks of c = T/(2·cp)
// tokens of each sequence (the zigzag of CpLayout) and computes its queries' attention block by block with the
// online softmax (kernels/block_attention.hpp) while the keys and values travel around the ring:
//   forward, step s = 0 … cp − 1: the block held is rank (r − s)'s; the next one is received from r − 1 and this one
//     sent to r + 1 while the (up to four) chunk pairs of this one are folded in; a pair whose keys all follow its
//     queries is skipped (with the zigzag every rank skips the same number, so none idles);
//   backward: the same ring of keys and values, each rank adding its queries' contribution to the block's dK, dV,
//     which travel with the block (computed into a fresh buffer while the previous hop's sum is in flight, added
//     when it lands) and arrive home after cp hops; dQ stays.
// Saved per microbatch: q, k, v, the output and the log-sum-exp of every query — Tl rows, never a T × T matrix.
#pragma once

#include "partrain/collectives/wait.hpp"
#include "partrain/kernels/block_attention.hpp"
#include "partrain/parallel/cp/context_attention.hpp"

namespace partrain::parallel {

template <class T>
class RingAttention : public ContextAttention<T> {
 public:
  RingAttention(CpContext& cp, std::int64_t heads, std::int64_t d, std::string name);
  std::unique_ptr<models::LayerState> make_state(const std::string& prefix, std::int64_t B) const override;
  void forward(const View2<T>& qkv, const View2<T>& out, models::LayerState& st) override;
  void backward(const View2<T>& dout, const View2<T>& dqkv, models::LayerState& st) override;
  double replay_transfers(std::int64_t B) override;

 private:
  using A = acc_t<T>;
  void ensure_scratch(std::int64_t B);
  /// Send `out` to r + 1 and receive `in` from r − 1 (n elements), both in flight.
  void shift(const T* out, T* in, std::int64_t n, int tag, coll::Request& sreq, coll::Request& rreq);
  /// Waits for both; the time is exposed communication.
  void wait(coll::Request& sreq, coll::Request& rreq, double posted);
  /// The (b, h) rows [row0, row0 + n) of a [B, H, Tl, d] array at `base`, as [n, d].
  View2<T> rows(T* base, std::int64_t b, std::int64_t h, std::int64_t row0, std::int64_t n) const {
    return View2<T>(base + ((b * heads_ + h) * lay().local + row0) * d_, n, d_);
  }
  const CpLayout& lay() const { return cp_.layout; }
  /// Calls f(b, h, qi, kj, q0, k0) for every pair of this rank's query chunk qi and rank `src`'s key chunk kj (first
  /// positions q0, k0) of every sequence b and head h that is not fully masked; between heads, with `progress` (a
  /// transfer in flight), drives MPI's progress so the next block keeps moving while this one computes.
  template <class F>
  void for_each_pair(std::int64_t B, int src, bool progress, F&& f) const {
    const int r = cp_.rank();
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t h = 0; h < heads_; ++h) {
        for (int qi = 0; qi < lay().chunks(); ++qi)
          for (int kj = 0; kj < lay().chunks(); ++kj) {
            const std::int64_t q0 = lay().chunk_start(qi, r), k0 = lay().chunk_start(kj, src);
            if (k0 <= q0 + lay().chunk() - 1) f(b, h, qi, kj, q0, k0);  // else every key follows every query
          }
        if (progress) coll::progress_mpi();
      }
  }

  CpContext& cp_;
  std::int64_t heads_, d_;
  std::string name_;
  std::int64_t B_ = -1;
  View1<T> ring_[2], dkv_in_, dkv_acc_, dkv_part_, dout_, dq_;  ///< scratch shared by microbatches
  View1<A> m_, l_, delta_;
  View2<T> s_, dp_;  ///< [c, c]
};

}  // namespace partrain::parallel
