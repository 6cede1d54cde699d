// The reference NMT model: GNMT-like sequence-to-sequence (Wu et al. 2016), small enough to check and to time.
//
//   source: x = src_embed[src]                                                  [S·B, E], time-major (row t·B + b)
//   encoder layer 0: bidirectional LSTM, H/2 units per direction, outputs concatenated [h_fwd ; h_bwd] → H
//           (the backward direction starts at each sentence's own last word: its state is zero on padding)
//   encoder layers 1 … L_e−1: LSTM H → H; from the third layer on (index ≥ 2) with a residual: e_i = lstm_i(e_{i−1}) + e_{i−1}
//   decoder layer 0: LSTM over y = tgt_embed[decoder inputs] (teacher forcing: BOS, then the target shifted right)
//   attention: the bottom decoder layer's output at time t queries the top encoder outputs; scaled dot-product
//           scores q·k/√H over the sentence's real positions, softmax, context = Σ a_s k_s (no parameters; GNMT
//           scores additively — dot-product keeps the kernel one op; written down in docs/nmt.md)
//   decoder layers 1 … L_d−1: LSTM over [d_{i−1} ; context] (2H → H), residual from index 2 on (adds d_{i−1})
//   generator: logits = d_top · W_gᵀ + b_g over the V target words; loss = mean cross-entropy over the real
//           (unpadded) target tokens of the global batch
// Parameters (PyTorch's names and shapes; LSTM gates in torch.nn.LSTM's order i|f|g|o):
//   src_embed.weight [V, E]        encoder.bi.{fwd,bwd}.{weight_ih [2H, E], weight_hh [2H, H/2], bias_ih [2H], bias_hh [2H]}
//   encoder.layers.<i>.{weight_ih [4H, H], weight_hh [4H, H], bias_ih, bias_hh}           i = 1 … L_e−1
//   tgt_embed.weight [V, E]        decoder.layers.0.{weight_ih [4H, E], weight_hh [4H, H], bias_ih, bias_hh}
//   decoder.layers.<i>.{weight_ih [4H, 2H], weight_hh [4H, H], bias_ih, bias_hh}           i = 1 … L_d−1
//   generator.weight [V, H], generator.bias [V]
// Init: embeddings N(0, 0.1); LSTM weights N(0, 1/√units), biases 0; generator weight N(0, 1/√H), bias 0.
// The forward and backward through time are explicit loops over the LSTM cell kernel (LstmSeq below), which the
// model-parallel executor of partrain-nmt runs chunk by chunk.
#pragma once

#include <cmath>

#include "partrain/kernels/lstm.hpp"
#include "partrain/models/model.hpp"

namespace partrain::models {

struct NmtConfig {
  std::int64_t vocab = 512;      ///< V (source and target share it)
  std::int64_t embed = 64;       ///< E
  std::int64_t hidden = 64;      ///< H (even: the bidirectional layer has H/2 per direction)
  std::int64_t enc_layers = 2;   ///< L_e ≥ 2 (the first is bidirectional)
  std::int64_t dec_layers = 2;   ///< L_d ≥ 1
  std::int64_t min_len = 4, max_len = 12;  ///< sentence lengths; S = max_len
};

/// One LSTM layer over a padded, time-major sequence, run forward in time chunks and backward in reverse chunks
/// (state and gradient carries kept between calls). `reverse`: the layer reads time S−1 → 0 and keeps a zero state on
/// each sentence's padding (t ≥ length), so it starts at the sentence's last word.
template <class T>
class LstmSeq {
 public:
  LstmSeq() = default;
  /// Buffers for `B` samples of `S` steps; `input` features, `units` hidden units.
  void allocate(const std::string& label, std::int64_t B, std::int64_t S, std::int64_t input, std::int64_t units,
                bool reverse);
  void bind(const kernels::LstmWeights<T>& w, const kernels::LstmWeights<T>& dw) {
    w_ = w;
    dw_ = dw;
  }
  /// Steps of times [t0, t1) (in the layer's own direction: a reverse layer takes them from t1−1 down to t0) from
  /// x [S·B, input]; the outputs land in h() rows. Calls must cover time in the layer's direction order.
  void forward(const View2<T>& x, const IndexView1& lengths, std::int64_t t0, std::int64_t t1);
  /// Starts a backward (zero carries).
  void begin_backward();
  /// Backward of times [t0, t1) in the reverse of the forward order; dh: [S·B, units] gradient of h() from above;
  /// dx rows of those times overwritten (dx may be empty: no input gradient).
  void backward(const View2<T>& x, const View2<T>& dh, const IndexView1& lengths, std::int64_t t0, std::int64_t t1,
                const View2<T>& dx);
  const View2<T>& h() const { return h_; }
  std::int64_t units() const { return units_; }
  bool reverse() const { return reverse_; }
  /// Forward FLOPs of one step for B samples.
  double step_flops() const { return 2.0 * double(B_) * 4.0 * double(units_) * double(input_ + units_); }

 private:
  View2<T> rows(const View2<T>& v, std::int64_t t) const {
    return Kokkos::subview(v, Kokkos::make_pair(t * B_, (t + 1) * B_), Kokkos::ALL);
  }
  std::int64_t B_ = 0, S_ = 0, input_ = 0, units_ = 0;
  bool reverse_ = false;
  kernels::LstmWeights<T> w_, dw_;
  View2<T> gates_, c_, h_, zeros_, dgates_, dh_carry_, dc_carry_, dh_tmp_, dc_tmp_;
};

/// Standard deviation of the embeddings' initial values.
constexpr double kNmtEmbedStd = 0.1;

/// A layer of the NMT model as the parameter store and the strategies see it: its parameters and its place in the
/// backward order (the computation is the model's own, not a chain of layers).
template <class T>
class NmtParams : public Layer<T> {
 public:
  struct P {
    P(std::string n, std::vector<std::int64_t> s, Init i, ShardSpec sh = ShardSpec())
        : name(std::move(n)), shape(std::move(s)), init(i), shard(std::move(sh)) {}
    std::string name;
    std::vector<std::int64_t> shape;  ///< local (a vocabulary shard's rows)
    Init init;
    ShardSpec shard;
  };
  NmtParams(std::string name, std::vector<P> params) : name_(std::move(name)), params_(std::move(params)) {}
  std::string name() const override { return name_; }
  void declare(ParamStore<T>& ps) override {
    for (const auto& p : params_) ps.declare(p.name, p.shape, p.init, p.shard);
  }
  void bind(const ParamStore<T>&) override {}
  std::int64_t out_width() const override { return 1; }
  std::unique_ptr<LayerState> make_state(std::int64_t) const override { return nullptr; }
  void forward(const Batch<T>&, const View2<T>&, const View2<T>&, LayerState&) override {
    throw RuntimeError("the NMT model runs as a whole (Nmt::forward_backward), not layer by layer");
  }
  void backward(const Batch<T>&, const View2<T>&, const View2<T>&, const View2<T>&, LayerState&) override {
    throw RuntimeError("the NMT model runs as a whole (Nmt::forward_backward), not layer by layer");
  }
  double forward_flops(std::int64_t) const override { return 0; }

 private:
  std::string name_;
  std::vector<P> params_;
};

/// The four tensors of an LSTM layer named `prefix` (PyTorch's names; the model's init).
template <class T>
std::vector<typename NmtParams<T>::P> nmt_lstm_params(const std::string& prefix, std::int64_t input, std::int64_t units) {
  const double s = 1.0 / std::sqrt(double(units));
  return {{prefix + ".weight_ih", {4 * units, input}, Init::normal(s)},
          {prefix + ".weight_hh", {4 * units, units}, Init::normal(s)},
          {prefix + ".bias_ih", {4 * units}, Init::constant(0)},
          {prefix + ".bias_hh", {4 * units}, Init::constant(0)}};
}

template <class T>
class Nmt : public Model<T> {
 public:
  explicit Nmt(const NmtConfig& cfg);
  const NmtConfig& config() const { return cfg_; }

  typename Model<T>::Workspace make_workspace(std::int64_t samples) const override;
  double forward_backward(const Batch<T>& batch, typename Model<T>::Workspace& ws, double loss_scale,
                          const typename Model<T>::Hooks& hooks = {}) override;
  double loss_sum(const Batch<T>& batch, typename Model<T>::Workspace& ws) override;
  double forward_flops(std::int64_t samples) const override;

  // Declared layer indices (for hooks and strategies).
  std::size_t src_embed_layer() const { return 0; }
  std::size_t bi_layer(int direction) const { return 1 + std::size_t(direction); }
  std::size_t enc_layer(std::int64_t i) const { return 2 + std::size_t(i); }  ///< i = 1 … L_e−1
  std::size_t tgt_embed_layer() const { return std::size_t(cfg_.enc_layers) + 2; }
  std::size_t dec_layer(std::int64_t i) const { return std::size_t(cfg_.enc_layers) + 3 + std::size_t(i); }
  std::size_t generator_layer() const { return std::size_t(cfg_.enc_layers + cfg_.dec_layers) + 3; }

 private:
  double run(const Batch<T>& batch, typename Model<T>::Workspace& ws, double loss_scale,
             const typename Model<T>::Hooks& hooks, bool backward);
  NmtConfig cfg_;
};

/// The LSTM weights (or their gradients) of the parameters named `<prefix>.weight_ih` … of a store.
template <class T>
kernels::LstmWeights<T> lstm_weights(const ParamStore<T>& ps, const std::string& prefix, bool grads);

extern template class LstmSeq<float>;
extern template class LstmSeq<double>;
extern template class LstmSeq<bf16>;
extern template class LstmSeq<fp16>;
extern template class Nmt<float>;
extern template class Nmt<double>;
extern template class Nmt<bf16>;
extern template class Nmt<fp16>;

}  // namespace partrain::models
