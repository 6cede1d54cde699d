// The reference MLP: widths [d0, …, dL]; layer i is Linear(d_i → d_{i+1}) followed by the activation (GELU tanh
// or ReLU) except after the last; softmax cross-entropy over dL classes.
// Parameters: layers.<i>.weight [d(i+1), d(i)] ~ N(0, √(2/d(i))) (He), layers.<i>.bias [d(i+1)] = 0.
#pragma once

#include <vector>

#include "partrain/kernels/activation.hpp"
#include "partrain/models/model.hpp"

namespace partrain::models {

struct MlpConfig {
  std::vector<std::int64_t> widths{16, 32, 10};
  kernels::Activation activation = kernels::Activation::Gelu;
};

/// Linear(in → out) + activation, as one layer ("layers.<i>").
template <class T>
class LinearActLayer : public Layer<T> {
 public:
  LinearActLayer(int index, std::int64_t in, std::int64_t out, kernels::Activation act, bool input_layer)
      : index_(index), in_(in), out_(out), act_(act), input_layer_(input_layer) {}

  std::string name() const override { return "layers." + std::to_string(index_); }
  void declare(ParamStore<T>& ps) override;
  void bind(const ParamStore<T>& ps) override;
  std::int64_t out_width() const override { return out_; }
  std::unique_ptr<LayerState> make_state(std::int64_t rows) const override;
  void forward(const Batch<T>& batch, const View2<T>& x, const View2<T>& y, LayerState& st) override;
  void backward(const Batch<T>& batch, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                LayerState& st) override;
  double forward_flops(std::int64_t rows) const override { return 2.0 * rows * in_ * out_; }
  double activation_elements(std::int64_t rows) const override {
    return double(rows) * double(out_) * (act_ == kernels::Activation::None ? 1.0 : 2.0);  // output, pre-activation
  }
  bool splits_backward() const override { return true; }
  void backward_input(const Batch<T>& batch, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                      LayerState& st) override;
  void backward_weight(const Batch<T>& batch, const View2<T>& x, LayerState& st) override;

 private:
  int index_;
  std::int64_t in_, out_;
  kernels::Activation act_;
  bool input_layer_;
  View2<T> w_, dw_;
  View1<T> b_, db_;
};

template <class T>
class Mlp : public Model<T> {
 public:
  explicit Mlp(const MlpConfig& cfg);
  const MlpConfig& config() const { return cfg_; }

 private:
  MlpConfig cfg_;
};

extern template class LinearActLayer<float>;
extern template class LinearActLayer<double>;
extern template class LinearActLayer<bf16>;
extern template class LinearActLayer<fp16>;
extern template class Mlp<float>;
extern template class Mlp<double>;
extern template class Mlp<bf16>;
extern template class Mlp<fp16>;

}  // namespace partrain::models
