// One model chunk of a pipeline stage: the reference model's layers [first, last) over their own parameter store,
// the same layer objects the whole model uses (plain or tensor-parallel), with each microbatch's activations in an
// Activations of its own so that several microbatches can be in flight.
//
// The chunk holding the last layer but not the first declares its own copy of the tied parameters (GPT's wte,
// declared by the embedding and used by the head), just before the head's own parameters so that it falls in the
// head's range (data-parallel buckets cover it); the pipeline sums the two copies' gradients between the stages.
// The whole model, unbuilt, stays behind to score the logits (plain or vocabulary-parallel cross-entropy) and to
// complete gradients (sequence parallelism).
#pragma once

#include <functional>
#include <memory>

#include "partrain/models/model.hpp"

namespace partrain::parallel::pipeline {

template <class T>
class ModelChunk : public models::Model<T> {
 public:
  /// What one microbatch keeps from its forward for its backward: every layer's output and state.
  struct Activations {
    std::vector<View2<T>> outputs;
    std::vector<std::unique_ptr<models::LayerState>> states;
  };
  using LayerHook = std::function<void(std::size_t layer)>;

  /// Takes layers [first, last) of `full` (a whole model, not built); `mb_rows` rows per microbatch.
  ModelChunk(std::unique_ptr<models::Model<T>> full, std::size_t first, std::size_t last, std::int64_t mb_rows);

  bool holds_first() const { return first_ == 0; }
  bool holds_last() const { return holds_last_; }
  /// The chunk's input and output tensors of one microbatch ([rows, width]; the input is empty for the first chunk).
  std::int64_t in_rows() const { return in_rows_; }
  std::int64_t in_width() const { return in_width_; }
  std::int64_t out_rows() const { return out_rows_; }
  std::int64_t out_width() const { return out_width_; }
  std::pair<std::size_t, std::size_t> model_layers() const { return {first_, first_ + this->layers_.size()}; }
  /// Parameters this chunk holds as a copy of another chunk's (the tied wte on the last chunk).
  const std::vector<std::string>& tied_copies() const { return tied_copies_; }
  std::vector<std::string> tied_parameters() const override { return full_->tied_parameters(); }

  Activations make_activations() const;
  /// Forward of one microbatch from `input` (empty for the first chunk); returns the last layer's output.
  View2<T> forward(const models::Batch<T>& mb, Activations& act, const View2<T>& input, const LayerHook& after = {});
  /// Backward from dy (the gradient of the chunk's output) into dx (the gradient of its input; empty for the first
  /// chunk). `split`: input gradients only (Layer::backward_input), the weight gradients left for backward_weight.
  void backward(const models::Batch<T>& mb, Activations& act, const View2<T>& input, const View2<T>& dy,
                const View2<T>& dx, bool split, const LayerHook& after = {});
  /// The weight gradients a split backward left (Layer::backward_weight of every layer).
  void backward_weight(const models::Batch<T>& mb, Activations& act, const View2<T>& input,
                       const LayerHook& after = {});

  double loss(const View2<T>& logits, const IndexView1& targets, const View1<acc_t<T>>& losses) override {
    return full_->loss(logits, targets, losses);
  }
  double loss_and_grad(const View2<T>& logits, const IndexView1& targets, acc_t<T> scale, const View1<acc_t<T>>& losses,
                       const View2<T>& dlogits) override {
    return full_->loss_and_grad(logits, targets, scale, losses, dlogits);
  }
  void finalize_grads_in(models::ParamStore<T>& ps) override { full_->finalize_grads_in(ps); }
  void finalize_grads_wide(const models::ParamStore<T>& ps, const View1<acc_t<T>>& grads) override {
    full_->finalize_grads_wide(ps, grads);
  }
  /// Every layer of the chunk splits its backward.
  bool splits_backward() const;
  /// Σ of the layers' own loss terms (the MoE load-balancing loss) for the microbatch whose forward left `act`.
  double aux_loss(const Activations& act) const;

 protected:
  void declare_before(std::size_t layer, models::ParamStore<T>& ps) override;

 private:
  std::unique_ptr<models::Model<T>> full_;
  std::size_t first_;
  bool holds_last_;
  std::int64_t mb_rows_, in_rows_ = 0, in_width_ = 0, out_rows_ = 0, out_width_ = 0;
  std::vector<models::ParamInfo> tied_decls_;  ///< declarations of the tied parameters, as the first layer makes them
  std::vector<std::string> tied_copies_;
  View1<T> grad_a_, grad_b_;  ///< ping-pong input gradients between layers (one backward at a time)
};

extern template class ModelChunk<float>;
extern template class ModelChunk<double>;
extern template class ModelChunk<bf16>;
extern template class ModelChunk<fp16>;

}  // namespace partrain::parallel::pipeline
