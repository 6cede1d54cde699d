// The three kinds of layer of the reference GPT. See gpt.hpp for the model and the maths.
#pragma once

#include "partrain/kernels/attention.hpp"
#include "partrain/models/gpt.hpp"

namespace partrain::models {

/// x[b·T + t] = wte[token] + wpe[t].  Parameters wte [V, C], wpe [T, C].
template <class T>
class GptEmbedding : public Layer<T> {
 public:
  explicit GptEmbedding(const GptConfig& c) : cfg_(c) {}
  std::string name() const override { return "embedding"; }
  void declare(ParamStore<T>& ps) override;
  void bind(const ParamStore<T>& ps) override;
  std::int64_t out_width() const override { return cfg_.channels; }
  std::unique_ptr<LayerState> make_state(std::int64_t) const override;
  void forward(const Batch<T>& batch, const View2<T>& x, const View2<T>& y, LayerState& st) override;
  void backward(const Batch<T>& batch, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                LayerState& st) override;
  double forward_flops(std::int64_t) const override { return 0.0; }
  double activation_elements(std::int64_t rows) const override { return double(rows) * double(cfg_.channels); }
  bool splits_backward() const override { return true; }
  void backward_input(const Batch<T>& batch, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                      LayerState& st) override;
  void backward_weight(const Batch<T>& batch, const View2<T>& x, LayerState& st) override;

 private:
  GptConfig cfg_;
  View2<T> wte_, wpe_, dwte_, dwpe_;
};

/// One transformer block "blocks.<l>": x += proj(attn(LN1(x))); x += mlp(LN2(x)).
template <class T>
class GptBlock : public Layer<T> {
 public:
  GptBlock(const GptConfig& c, int index);
  std::string name() const override { return "blocks." + std::to_string(index_); }
  void declare(ParamStore<T>& ps) override;
  void bind(const ParamStore<T>& ps) override;
  std::int64_t out_width() const override { return cfg_.channels; }
  std::unique_ptr<LayerState> make_state(std::int64_t rows) const override;
  void forward(const Batch<T>& batch, const View2<T>& x, const View2<T>& y, LayerState& st) override;
  void backward(const Batch<T>& batch, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                LayerState& st) override;
  double forward_flops(std::int64_t rows) const override;
  double activation_elements(std::int64_t rows) const override;
  bool splits_backward() const override { return !moe_; }
  void backward_input(const Batch<T>& batch, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                      LayerState& st) override;
  void backward_weight(const Batch<T>& batch, const View2<T>& x, LayerState& st) override;
  double aux_loss(const LayerState& st) const override;
  /// The block's mixture of experts in place of its MLP, or null.
  MoeFeedForward<T>* moe() const { return moe_.get(); }
  /// The MoE routing of the microbatch whose state is `st` (null for a dense block).
  const MoeState<T>* moe_state(const LayerState& st) const;

 private:
  struct Params {
    View1<T> ln1_w, ln1_b, qkv_b, attn_proj_b, ln2_w, ln2_b, fc_b, mlp_proj_b;
    View2<T> qkv_w, attn_proj_w, fc_w, mlp_proj_w;
  };
  Params bind_views(const ParamStore<T>& ps, bool grads) const;
  void ensure_scratch(std::int64_t rows);

  GptConfig cfg_;
  int index_;
  Params p_, g_;
  std::unique_ptr<MoeFeedForward<T>> moe_;
  // Backward scratch, shared by all microbatches of this layer (only one backward runs at a time).
  View2<T> d_wide_, d_narrow_, d_qkv_;
};

/// logits = LN_f(x)·wteᵀ (tied to the embedding).  Parameters ln_f.weight, ln_f.bias.
template <class T>
class GptHead : public Layer<T> {
 public:
  explicit GptHead(const GptConfig& c) : cfg_(c) {}
  std::string name() const override { return "head"; }
  void declare(ParamStore<T>& ps) override;
  std::vector<std::string> uses() const override { return {"wte"}; }
  void bind(const ParamStore<T>& ps) override;
  std::int64_t out_width() const override { return cfg_.vocab; }
  std::unique_ptr<LayerState> make_state(std::int64_t rows) const override;
  void forward(const Batch<T>& batch, const View2<T>& x, const View2<T>& y, LayerState& st) override;
  void backward(const Batch<T>& batch, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                LayerState& st) override;
  double forward_flops(std::int64_t rows) const override { return 2.0 * rows * cfg_.channels * cfg_.vocab; }
  double activation_elements(std::int64_t rows) const override {
    // logits [rows, V]; LayerNorm output, mean, rstd; the backward's scratch [rows, C]
    return double(rows) * (double(cfg_.vocab) + 2.0 * double(cfg_.channels) + 2.0);
  }
  bool splits_backward() const override { return true; }
  void backward_input(const Batch<T>& batch, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                      LayerState& st) override;
  void backward_weight(const Batch<T>& batch, const View2<T>& x, LayerState& st) override;

 private:
  GptConfig cfg_;
  View2<T> wte_, dwte_;
  View1<T> w_, b_, dw_, db_;
  View2<T> d_ln_;
};

}  // namespace partrain::models
