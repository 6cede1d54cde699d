#include "partrain/models/mlp.hpp"

#include <cmath>

#include "partrain/kernels/linear.hpp"

namespace partrain::models {
namespace {
template <class T>
struct LinearActState : LayerState {
  View2<T> pre;   ///< [rows, out] pre-activation (empty when there is no activation)
  View2<T> dpre;  ///< [rows, out] gradient of the pre-activation, kept from backward_input for backward_weight
};
}  // namespace

template <class T>
void LinearActLayer<T>::declare(ParamStore<T>& ps) {
  ps.declare(name() + ".weight", {out_, in_}, Init::normal(std::sqrt(2.0 / double(in_))));
  ps.declare(name() + ".bias", {out_}, Init::constant(0.0));
}

template <class T>
void LinearActLayer<T>::bind(const ParamStore<T>& ps) {
  w_ = ps.param2(name() + ".weight");
  dw_ = ps.grad2(name() + ".weight");
  b_ = ps.flat_param(name() + ".bias");
  db_ = ps.flat_grad(name() + ".bias");
}

template <class T>
std::unique_ptr<LayerState> LinearActLayer<T>::make_state(std::int64_t rows) const {
  auto st = std::make_unique<LinearActState<T>>();
  if (act_ != kernels::Activation::None) st->pre = View2<T>("act/" + name() + ".pre", rows, out_);
  return st;
}

template <class T>
void LinearActLayer<T>::forward(const Batch<T>& batch, const View2<T>& x_in, const View2<T>& y, LayerState& s) {
  auto& st = static_cast<LinearActState<T>&>(s);
  const View2<T>& x = input_layer_ ? batch.features : x_in;
  if (act_ == kernels::Activation::None) {
    kernels::linear_forward(x, w_, b_, y);
    return;
  }
  kernels::linear_forward(x, w_, b_, st.pre);
  kernels::activation_forward(act_, kernels::flat(st.pre), kernels::flat(y));
}

template <class T>
void LinearActLayer<T>::backward(const Batch<T>& batch, const View2<T>& x_in, const View2<T>& dy,
                                 const View2<T>& dx, LayerState& s) {
  auto& st = static_cast<LinearActState<T>&>(s);
  const View2<T>& x = input_layer_ ? batch.features : x_in;
  if (act_ != kernels::Activation::None)  // dy becomes the gradient of the pre-activation, in place
    kernels::activation_backward(act_, kernels::flat(st.pre), kernels::flat(dy), kernels::flat(dy));
  kernels::linear_backward(dy, x, w_, dx, dw_, db_);
}

template <class T>
void LinearActLayer<T>::backward_input(const Batch<T>&, const View2<T>&, const View2<T>& dy, const View2<T>& dx,
                                       LayerState& s) {
  auto& st = static_cast<LinearActState<T>&>(s);
  if (st.dpre.extent(0) != dy.extent(0)) st.dpre = View2<T>("act/" + name() + ".dpre", dy.extent(0), out_);
  if (act_ != kernels::Activation::None)
    kernels::activation_backward(act_, kernels::flat(st.pre), kernels::flat(dy), kernels::flat(st.dpre));
  else
    Kokkos::deep_copy(st.dpre, dy);
  kernels::linear_backward_input(st.dpre, w_, dx);
}

template <class T>
void LinearActLayer<T>::backward_weight(const Batch<T>& batch, const View2<T>& x_in, LayerState& s) {
  auto& st = static_cast<LinearActState<T>&>(s);
  kernels::linear_backward_weight(st.dpre, input_layer_ ? batch.features : x_in, dw_, db_);
}

template <class T>
Mlp<T>::Mlp(const MlpConfig& cfg) : Model<T>("mlp", 1), cfg_(cfg) {
  const auto& w = cfg.widths;
  for (size_t i = 0; i + 1 < w.size(); ++i) {
    const bool last = i + 2 == w.size();
    this->layers_.push_back(std::make_unique<LinearActLayer<T>>(
        int(i), w[i], w[i + 1], last ? kernels::Activation::None : cfg.activation, i == 0));
  }
}

template class LinearActLayer<float>;
template class LinearActLayer<double>;
template class Mlp<float>;
template class Mlp<double>;
template class LinearActLayer<bf16>;
template class LinearActLayer<fp16>;
template class Mlp<bf16>;
template class Mlp<fp16>;

}  // namespace partrain::models
