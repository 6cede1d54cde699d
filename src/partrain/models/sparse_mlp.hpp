// The embedding-bag model of recommendation (a simplified DLRM, Naumov et al. 2019): every sample has F sparse
// features, each a bag of `bag` ids into its own table of `rows` rows × D, and `dense` dense features. Layer 0 looks
// the bags up and sums each (EmbeddingBag, mode "sum") and concatenates the F sums with the dense features; an MLP
// of Linear + ReLU layers follows, ending in 2 classes (click or not) scored by softmax cross-entropy. DLRM's bottom
// MLP over the dense features and its pairwise dot interaction are left out: what matters to the parameter server is
// the shape of the parameters — a few large tables a batch touches a few rows of, and a small dense part.
// Parameters: emb.<f>.weight [rows, D] ~ N(0, 0.1²); layers.<i>.weight / .bias as the reference MLP's.
//
// Ids in the batch (Batch::tokens, [samples · F · bag]) index the layer's own tables; the hybrid parameter server's
// workers build the model with tables of only the rows a mini-batch touches and give it ids into those (docs/ps.md).
#pragma once

#include <vector>

#include "partrain/models/mlp.hpp"

namespace partrain::models {

struct SparseMlpConfig {
  std::int64_t tables = 4, rows = 100000, dim = 16, bag = 4, dense = 8;
  std::vector<std::int64_t> widths{64, 32};  ///< hidden widths of the MLP after the lookups (then 2 classes)
  static constexpr std::int64_t kClasses = 2;
  std::int64_t concat_width() const { return tables * dim + dense; }
  std::int64_t ids_per_sample() const { return tables * bag; }
  std::int64_t table_numel() const { return tables * rows * dim; }
};

/// Layer 0: y[s] = [Σ_b E_0[ids(s,0,b)], …, Σ_b E_{F−1}[ids(s,F−1,b)], x_dense[s]].
template <class T>
class EmbeddingBagLayer : public Layer<T> {
 public:
  explicit EmbeddingBagLayer(const SparseMlpConfig& c) : cfg_(c) {}
  std::string name() const override { return "emb"; }
  void declare(ParamStore<T>& ps) override;
  void bind(const ParamStore<T>& ps) override;
  std::int64_t out_width() const override { return cfg_.concat_width(); }
  std::unique_ptr<LayerState> make_state(std::int64_t) const override { return std::make_unique<LayerState>(); }
  void forward(const Batch<T>& batch, const View2<T>& x, const View2<T>& y, LayerState& st) override;
  /// Scatters dy into the rows the bags used, sample by sample in order (deterministic).
  void backward(const Batch<T>& batch, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                LayerState& st) override;
  double forward_flops(std::int64_t rows) const override { return double(rows) * double(cfg_.tables * cfg_.bag * cfg_.dim); }
  double activation_elements(std::int64_t rows) const override { return double(rows) * double(out_width()); }
  static std::string table_name(std::int64_t f) { return "emb." + std::to_string(f) + ".weight"; }

 private:
  SparseMlpConfig cfg_;
  std::vector<View2<T>> w_, dw_;
};

template <class T>
class SparseMlp : public Model<T> {
 public:
  explicit SparseMlp(const SparseMlpConfig& cfg);
  const SparseMlpConfig& config() const { return cfg_; }

 private:
  SparseMlpConfig cfg_;
};

extern template class EmbeddingBagLayer<float>;
extern template class EmbeddingBagLayer<double>;
extern template class EmbeddingBagLayer<bf16>;
extern template class EmbeddingBagLayer<fp16>;
extern template class SparseMlp<float>;
extern template class SparseMlp<double>;
extern template class SparseMlp<bf16>;
extern template class SparseMlp<fp16>;

}  // namespace partrain::models
