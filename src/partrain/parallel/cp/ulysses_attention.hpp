// DeepSpeed-Ulysses attention (docs/cp.md): rank r holds the contiguous tokens r·Tl … of each sequence and H heads
// (its tensor-parallel share); an all-to-all over the context-parallel group sends rank k the columns of heads
// k·H/cp … of q, k, v, so that every rank then holds the whole sequence for H/cp heads and runs the ordinary causal
// attention kernel on it (kernels/attention.hpp); a second all-to-all returns each token's output to its rank.
// Backward mirrors it: the output gradient out, the ordinary backward, dq, dk, dv back. Four all-to-alls per layer
// and microbatch, each sending (cp − 1)/cp of what it moves; heads must divide by cp.
#pragma once

#include "partrain/kernels/attention.hpp"
#include "partrain/parallel/cp/context_attention.hpp"

namespace partrain::parallel {

template <class T>
class UlyssesAttention : public ContextAttention<T> {
 public:
  UlyssesAttention(CpContext& cp, std::int64_t heads, std::int64_t d, std::string name);
  std::unique_ptr<models::LayerState> make_state(const std::string& prefix, std::int64_t B) const override;
  void forward(const View2<T>& qkv, const View2<T>& out, models::LayerState& st) override;
  void backward(const View2<T>& dout, const View2<T>& dqkv, models::LayerState& st) override;
  double replay_transfers(std::int64_t B) override;

 private:
  void ensure_scratch(std::int64_t B);
  /// send → recv, count elements per rank, timed and counted.
  void alltoall(const View1<T>& send, const View1<T>& recv, std::int64_t count);

  CpContext& cp_;
  std::int64_t heads_, d_;
  std::string name_;
  std::int64_t B_ = -1;
  View1<T> send_, recv_;  ///< [cp, B, Tl, 3, w/cp] at most: one rank's block per peer
  View2<T> full_, yfull_;  ///< the whole sequences for this rank's heads: q | k | v [B·T, 3w/cp], output [B·T, w/cp]
};

}  // namespace partrain::parallel
