#include "partrain/parallel/pipeline/model_chunk.hpp"

#include <algorithm>

#include "partrain/core/error.hpp"

namespace partrain::parallel::pipeline {

template <class T>
ModelChunk<T>::ModelChunk(std::unique_ptr<models::Model<T>> full, std::size_t first, std::size_t last,
                          std::int64_t mb_rows)
    : models::Model<T>(full->kind(), full->rows_per_sample()),
      full_(std::move(full)),
      first_(first),
      holds_last_(last == full_->layers().size()),
      mb_rows_(mb_rows) {
  const auto& all = full_->layers();
  PARTRAIN_REQUIRE(first < last && last <= all.size(), "a chunk holds at least one layer");
  if (first > 0) {
    in_rows_ = all[first - 1]->out_rows(mb_rows);
    in_width_ = all[first - 1]->out_width();
  }
  out_rows_ = all[last - 1]->out_rows(mb_rows);
  out_width_ = all[last - 1]->out_width();
  if (holds_last_ && first > 0 && !full_->tied_parameters().empty()) {
    models::ParamStore<T> decl;  // what the first layer declares (nothing is allocated)
    all[0]->declare(decl);
    for (const auto& name : full_->tied_parameters())
      for (const auto& info : decl.infos())
        if (info.name == name) tied_decls_.push_back(info);
  }
  this->layers_ = full_->take_layers(first, last);
  std::int64_t widest = 0;
  for (const auto& l : this->layers_) widest = std::max(widest, l->out_rows(mb_rows) * l->out_width());
  widest = std::max(widest, in_rows_ * in_width_);
  grad_a_ = View1<T>("act/pipeline.grad_a", widest);
  grad_b_ = View1<T>("act/pipeline.grad_b", widest);
}

template <class T>
void ModelChunk<T>::declare_before(std::size_t layer, models::ParamStore<T>& ps) {
  if (layer + 1 != this->layers_.size()) return;  // the copies go with the last layer (the head that uses them)
  for (const auto& d : tied_decls_) {
    ps.declare(d.name, d.shape, d.init, d.shard);
    tied_copies_.push_back(d.name);
  }
}

template <class T>
bool ModelChunk<T>::splits_backward() const {
  return std::all_of(this->layers_.begin(), this->layers_.end(), [](const auto& l) { return l->splits_backward(); });
}

template <class T>
double ModelChunk<T>::aux_loss(const Activations& act) const {
  double a = 0;
  for (std::size_t i = 0; i < this->layers_.size(); ++i) a += this->layers_[i]->aux_loss(*act.states[i]);
  return a;
}

template <class T>
typename ModelChunk<T>::Activations ModelChunk<T>::make_activations() const {
  Activations a;
  for (const auto& l : this->layers_) {
    a.outputs.emplace_back("act/" + l->name() + ".out", l->out_rows(mb_rows_), l->out_width());
    a.states.push_back(l->make_state(mb_rows_));
  }
  return a;
}

template <class T>
View2<T> ModelChunk<T>::forward(const models::Batch<T>& mb, Activations& act, const View2<T>& input,
                                const LayerHook& after) {
  View2<T> x = input;
  for (std::size_t i = 0; i < this->layers_.size(); ++i) {
    this->layers_[i]->forward(mb, x, act.outputs[i], *act.states[i]);
    x = act.outputs[i];
    if (after) after(i);
  }
  return x;
}

template <class T>
void ModelChunk<T>::backward(const models::Batch<T>& mb, Activations& act, const View2<T>& input, const View2<T>& dy,
                             const View2<T>& dx, bool split, const LayerHook& after) {
  View2<T> cur = dy;
  View1<T> next = grad_a_, other = grad_b_;
  for (std::size_t i = this->layers_.size(); i-- > 0;) {
    const View2<T> x = i > 0 ? act.outputs[i - 1] : input;
    const View2<T> dxi = i > 0 ? View2<T>(next.data(), x.extent(0), x.extent(1)) : dx;
    if (split) this->layers_[i]->backward_input(mb, x, cur, dxi, *act.states[i]);
    else this->layers_[i]->backward(mb, x, cur, dxi, *act.states[i]);
    if (after) after(i);
    cur = dxi;
    std::swap(next, other);
  }
}

template <class T>
void ModelChunk<T>::backward_weight(const models::Batch<T>& mb, Activations& act, const View2<T>& input,
                                    const LayerHook& after) {
  for (std::size_t i = this->layers_.size(); i-- > 0;) {
    this->layers_[i]->backward_weight(mb, i > 0 ? act.outputs[i - 1] : input, *act.states[i]);
    if (after) after(i);
  }
}

template class ModelChunk<float>;
template class ModelChunk<double>;
template class ModelChunk<bf16>;
template class ModelChunk<fp16>;

}  // namespace partrain::parallel::pipeline
