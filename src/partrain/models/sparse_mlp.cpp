#include "partrain/models/sparse_mlp.hpp"

namespace partrain::models {

template <class T>
void EmbeddingBagLayer<T>::declare(ParamStore<T>& ps) {
  for (std::int64_t f = 0; f < cfg_.tables; ++f) ps.declare(table_name(f), {cfg_.rows, cfg_.dim}, Init::normal(0.1));
}

template <class T>
void EmbeddingBagLayer<T>::bind(const ParamStore<T>& ps) {
  w_.clear();
  dw_.clear();
  for (std::int64_t f = 0; f < cfg_.tables; ++f) {
    w_.push_back(ps.param2(table_name(f)));
    dw_.push_back(ps.grad2(table_name(f)));
  }
}

template <class T>
void EmbeddingBagLayer<T>::forward(const Batch<T>& batch, const View2<T>&, const View2<T>& y, LayerState&) {
  const std::int64_t F = cfg_.tables, Bg = cfg_.bag, D = cfg_.dim, Dn = cfg_.dense;
  const auto ids = batch.tokens;
  const auto xd = batch.features;
  for (std::int64_t f = 0; f < F; ++f) {
    const auto w = w_[std::size_t(f)];
    Kokkos::parallel_for(
        "partrain::embedding_bag::forward", Kokkos::RangePolicy<ExecSpace>(0, batch.samples),
        KOKKOS_LAMBDA(std::int64_t s) {
          for (std::int64_t d = 0; d < D; ++d) {
            acc_t<T> a = 0;
            for (std::int64_t b = 0; b < Bg; ++b) a += acc_t<T>(w(ids((s * F + f) * Bg + b), d));
            y(s, f * D + d) = T(a);
          }
        });
  }
  Kokkos::parallel_for(
      "partrain::embedding_bag::dense", Kokkos::RangePolicy<ExecSpace>(0, batch.samples), KOKKOS_LAMBDA(std::int64_t s) {
        for (std::int64_t j = 0; j < Dn; ++j) y(s, F * D + j) = xd(s, j);
      });
}

template <class T>
void EmbeddingBagLayer<T>::backward(const Batch<T>& batch, const View2<T>&, const View2<T>& dy, const View2<T>&,
                                    LayerState&) {
  const std::int64_t F = cfg_.tables, Bg = cfg_.bag, D = cfg_.dim, S = batch.samples;
  const auto ids = batch.tokens;
  for (std::int64_t f = 0; f < F; ++f) {
    const auto dw = dw_[std::size_t(f)];
    // One column per thread, the samples in order: every row's sum is taken in the same order on any layout.
    Kokkos::parallel_for(
        "partrain::embedding_bag::backward", Kokkos::RangePolicy<ExecSpace>(0, D), KOKKOS_LAMBDA(std::int64_t d) {
          for (std::int64_t s = 0; s < S; ++s)
            for (std::int64_t b = 0; b < Bg; ++b) {
              const int r = ids((s * F + f) * Bg + b);
              dw(r, d) = T(acc_t<T>(dw(r, d)) + acc_t<T>(dy(s, f * D + d)));
            }
        });
  }
}

template <class T>
SparseMlp<T>::SparseMlp(const SparseMlpConfig& cfg) : Model<T>("sparse_mlp", 1), cfg_(cfg) {
  this->layers_.push_back(std::make_unique<EmbeddingBagLayer<T>>(cfg));
  std::int64_t in = cfg.concat_width();
  int i = 0;
  for (auto w : cfg.widths) {
    this->layers_.push_back(std::make_unique<LinearActLayer<T>>(i++, in, w, kernels::Activation::Relu, false));
    in = w;
  }
  this->layers_.push_back(
      std::make_unique<LinearActLayer<T>>(i, in, SparseMlpConfig::kClasses, kernels::Activation::None, false));
}

template class EmbeddingBagLayer<float>;
template class EmbeddingBagLayer<double>;
template class EmbeddingBagLayer<bf16>;
template class EmbeddingBagLayer<fp16>;
template class SparseMlp<float>;
template class SparseMlp<double>;
template class SparseMlp<bf16>;
template class SparseMlp<fp16>;

}  // namespace partrain::models
