// The layers of TpGpt (see gpt.hpp): vocabulary-parallel embedding, tensor-parallel block, tied head.
#pragma once

#include "partrain/kernels/attention.hpp"
#include "partrain/models/gpt.hpp"
#include "partrain/parallel/cp/context_attention.hpp"
#include "partrain/parallel/tp/linear.hpp"

namespace partrain::parallel {

/// Rows of `rows` (whole sequences) a context-parallel rank holds: its Tl tokens of each sequence (all without).
inline std::int64_t cp_rows(const TpContext& tp, std::int64_t rows) { return rows / tp.cp_size(); }
/// Rows this rank keeps outside the tensor-parallel regions: its context-parallel rows, or under sequence
/// parallelism its contiguous shard of them.
inline std::int64_t local_rows(const TpContext& tp, std::int64_t rows) {
  return tp.sequence_parallel ? cp_rows(tp, rows) / tp.size() : cp_rows(tp, rows);
}
/// Where this rank's tokens sit in their sequences (the identity without context parallelism).
inline CpLayout layout_of(const TpContext& tp, std::int64_t seq_len) {
  return tp.cp ? tp.cp->layout : CpLayout(seq_len, 1, 0, false);
}

template <class T>
class TpEmbedding : public models::Layer<T> {
 public:
  TpEmbedding(const models::GptConfig& c, TpContext& tp) : cfg_(c), tp_(tp) {}
  std::string name() const override { return "embedding"; }
  void declare(models::ParamStore<T>& ps) override;
  void bind(const models::ParamStore<T>& ps) override;
  std::int64_t out_width() const override { return cfg_.channels; }
  std::int64_t out_rows(std::int64_t rows) const override { return local_rows(tp_, rows); }
  std::unique_ptr<models::LayerState> make_state(std::int64_t) const override {
    return std::make_unique<models::LayerState>();
  }
  void forward(const models::Batch<T>& b, const View2<T>& x, const View2<T>& y, models::LayerState& st) override;
  void backward(const models::Batch<T>& b, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                models::LayerState& st) override;
  double forward_flops(std::int64_t) const override { return 0.0; }

 private:
  /// The token ids of this rank's rows (the batch's own without context parallelism).
  IndexView1 local_tokens(const IndexView1& tokens);
  models::GptConfig cfg_;
  TpContext& tp_;
  View2<T> wte_, wpe_, dwte_, dwpe_, full_;
  IndexView1 tokens_;
};

template <class T>
class TpBlock : public models::Layer<T> {
 public:
  TpBlock(const models::GptConfig& c, int index, TpContext& tp);
  std::string name() const override { return "blocks." + std::to_string(index_); }
  void declare(models::ParamStore<T>& ps) override;
  void bind(const models::ParamStore<T>& ps) override;
  std::int64_t out_width() const override { return cfg_.channels; }
  std::int64_t out_rows(std::int64_t rows) const override { return local_rows(tp_, rows); }
  std::unique_ptr<models::LayerState> make_state(std::int64_t rows) const override;
  void forward(const models::Batch<T>& b, const View2<T>& x, const View2<T>& y, models::LayerState& st) override;
  void backward(const models::Batch<T>& b, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                models::LayerState& st) override;
  double forward_flops(std::int64_t rows) const override;
  /// The context-parallel attention (null without context parallelism).
  ContextAttention<T>* context_attention() const { return cp_attn_.get(); }

 private:
  void ensure_scratch(std::int64_t rows);
  models::GptConfig cfg_;
  int index_;
  TpContext& tp_;
  ColumnParallelLinear<T> qkv_, fc_;
  RowParallelLinear<T> proj_, mproj_;
  std::unique_ptr<ContextAttention<T>> cp_attn_;  ///< context parallelism over more than one rank, else null
  View1<T> ln1_w_, ln1_b_, ln2_w_, ln2_b_, dln1_w_, dln1_b_, dln2_w_, dln2_b_;
  View2<T> full_a_, full_b_, wide_, dqkv_, datty_, dln_;  ///< scratch shared by microbatches
};

template <class T>
class TpHead : public models::Layer<T> {
 public:
  TpHead(const models::GptConfig& c, TpContext& tp) : cfg_(c), tp_(tp) {}
  std::string name() const override { return "head"; }
  void declare(models::ParamStore<T>& ps) override;
  std::vector<std::string> uses() const override { return {"wte"}; }
  void bind(const models::ParamStore<T>& ps) override;
  std::int64_t out_width() const override { return cfg_.vocab / tp_.size(); }
  std::int64_t out_rows(std::int64_t rows) const override { return cp_rows(tp_, rows); }
  std::unique_ptr<models::LayerState> make_state(std::int64_t rows) const override;
  void forward(const models::Batch<T>& b, const View2<T>& x, const View2<T>& y, models::LayerState& st) override;
  void backward(const models::Batch<T>& b, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                models::LayerState& st) override;
  double forward_flops(std::int64_t rows) const override {
    return 2.0 * double(cp_rows(tp_, rows)) * double(cfg_.channels) * double(cfg_.vocab / tp_.size());
  }

 private:
  models::GptConfig cfg_;
  TpContext& tp_;
  View2<T> wte_, dwte_, dln_full_, dln_;
  View1<T> w_, b_, dw_, db_;
};

}  // namespace partrain::parallel
