// The causal self-attention of a context-parallel group (context.hpp): each rank gives its tokens' q, k, v and gets
// its tokens' outputs, exactly those of attention over the whole sequence. Two kinds, one file each: RingAttention
// (ring_attention.hpp) and UlyssesAttention (ulysses_attention.hpp). A tensor-parallel block calls it in place of
// kernels::attention_forward/backward on the heads it holds.
#pragma once

#include <memory>
#include <string>

#include "partrain/models/layer.hpp"
#include "partrain/parallel/cp/context.hpp"

namespace partrain::parallel {

template <class T>
class ContextAttention {
 public:
  virtual ~ContextAttention() = default;
  /// Saved activations of one microbatch of B sequences (this rank's Tl tokens of each).
  virtual std::unique_ptr<models::LayerState> make_state(const std::string& prefix, std::int64_t B) const = 0;
  /// qkv [B·Tl, 3w]: this rank's tokens, q | k | v of its heads (head h at columns h·d … of each) → out [B·Tl, w].
  virtual void forward(const View2<T>& qkv, const View2<T>& out, models::LayerState& st) = 0;
  /// dout [B·Tl, w] → dqkv [B·Tl, 3w] (overwritten).
  virtual void backward(const View2<T>& dout, const View2<T>& dqkv, models::LayerState& st) = 0;
  /// The transfers of one forward and backward on B sequences with no compute beside them: their pure time (s).
  virtual double replay_transfers(std::int64_t B) = 0;
};

/// The kind `cp.kind` names, for `heads` heads of width d on this rank (its tensor-parallel share). Ulysses needs
/// heads divisible by cp (checked by the configuration).
template <class T>
std::unique_ptr<ContextAttention<T>> make_context_attention(CpContext& cp, std::int64_t heads, std::int64_t d,
                                                            const std::string& name);

}  // namespace partrain::parallel
