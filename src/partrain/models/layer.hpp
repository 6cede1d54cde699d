// The unit strategies cut models into: a layer owns named parameters (views into the model's buffers) and has
// forward and backward over a 2D activation [rows, width]. What a layer saves for its backward lives in a
// LayerState, one per microbatch, so several microbatches can be in flight (pipelining) and a strategy can drop
// or recompute one layer's activations. Parameter gradients are ACCUMULATED (+=), so microbatches add up.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "partrain/core/types.hpp"
#include "partrain/models/param_store.hpp"

namespace partrain::models {

/// One microbatch's inputs: features (MLP) or tokens (GPT), and targets. rows = samples × rows_per_sample.
template <class T>
struct Batch {
  View2<T> features;   ///< [samples, d0] (MLP) or empty
  IndexView1 tokens;   ///< [samples·T] (GPT) or empty
  IndexView1 targets;  ///< [rows] class labels / next tokens (NMT: -1 at padding)
  IndexView1 dec_tokens;  ///< NMT: decoder inputs [samples·S] (BOS, then the target shifted right)
  IndexView1 lengths;     ///< NMT: real (unpadded) length of every sentence [samples]
  std::int64_t samples = 0;
};

/// Saved activations of one layer for one microbatch (layers derive their own).
struct LayerState {
  virtual ~LayerState() = default;
  /// The factor the step's loss gradient carries (1/(global rows) × the loss scaler's), set before backward: a layer
  /// that adds its own loss term (an MoE router's load-balancing loss) scales that term's gradient by it.
  double loss_grad_scale = 1.0;
};

template <class T>
class Layer {
 public:
  virtual ~Layer() = default;
  /// Name prefix of the layer's parameters ("blocks.3", "layers.0", "wte").
  virtual std::string name() const = 0;
  /// Registers the layer's parameters (a layer that only uses another's, e.g. a tied head, declares none).
  virtual void declare(ParamStore<T>& ps) = 0;
  /// Parameters the layer binds that another layer declares (the tied head: wte).
  virtual std::vector<std::string> uses() const { return {}; }
  /// Takes views of its parameters and gradients once the store is allocated.
  virtual void bind(const ParamStore<T>& ps) = 0;
  /// Width of the layer's output activation.
  virtual std::int64_t out_width() const = 0;
  /// Rows of the layer's output for `rows` rows of the microbatch (a sequence-parallel layer keeps a shard).
  virtual std::int64_t out_rows(std::int64_t rows) const { return rows; }
  /// Saved activations for a microbatch of `rows` rows.
  virtual std::unique_ptr<LayerState> make_state(std::int64_t rows) const = 0;
  /// y = layer(x). x: [rows, in] (ignored by an input layer, which reads the batch).
  virtual void forward(const Batch<T>& batch, const View2<T>& x, const View2<T>& y, LayerState& st) = 0;
  /// dx = ∂L/∂x given dy (dx empty for an input layer); parameter gradients accumulated.
  virtual void backward(const Batch<T>& batch, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                        LayerState& st) = 0;
  /// A loss term the layer adds itself after its forward (the MoE router's load-balancing loss), as a sum over the
  /// microbatch's rows like the per-row losses; its gradient is the layer's own business (LayerState::
  /// loss_grad_scale). 0 for most layers.
  virtual double aux_loss(const LayerState& /*st*/) const { return 0.0; }
  /// Forward FLOPs for `rows` rows (backward counts twice this).
  virtual double forward_flops(std::int64_t rows) const = 0;
  /// Elements of activation memory the layer allocates for a microbatch of `rows` rows: its output, its saved state
  /// and the scratch its backward keeps (what the memory tracker counts as "act/"); for estimates before a run.
  /// Negative where the layer does not say.
  virtual double activation_elements(std::int64_t /*rows*/) const { return -1.0; }

  // The backward in two halves, for zero-bubble pipeline schedules (Qi et al. 2023): backward_input computes dx
  // (the part the previous stage waits for) and the cheap parameter gradients, and keeps in `st` what
  // backward_weight needs to accumulate the expensive ones (the gemm weight gradients) later. Together they equal
  // backward(). A layer that does not split says so, and a schedule that needs the split refuses it.
  virtual bool splits_backward() const { return false; }
  virtual void backward_input(const Batch<T>& batch, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                              LayerState& st) {
    backward(batch, x, dy, dx, st);
  }
  virtual void backward_weight(const Batch<T>& /*batch*/, const View2<T>& /*x*/, LayerState& /*st*/) {}
};

}  // namespace partrain::models
