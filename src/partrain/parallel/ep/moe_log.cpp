#include "partrain/parallel/ep/moe_log.hpp"

#include <algorithm>

#include "partrain/collectives/wait.hpp"

namespace partrain::parallel {

template <class T>
MoeLog<T>::MoeLog(const models::Model<T>& model) {
  const auto& layers = model.layers();
  for (std::size_t i = 0; i < layers.size(); ++i)
    if (const auto* b = dynamic_cast<const models::GptBlock<T>*>(layers[i].get()); b && b->moe()) {
      blocks_.push_back(b);
      layers_.push_back(i);
    }
  if (!blocks_.empty()) {
    const auto& c = blocks_.front()->moe()->config();
    E_ = c.experts;
    k_ = c.top_k;
    T_ = model.rows_per_sample();
  }
}

template <class T>
void MoeLog<T>::record(const typename models::Model<T>::Workspace& ws, std::int64_t samples, MPI_Comm comm,
                       double global_rows) {
  if (blocks_.empty()) return;
  const std::size_t nb = blocks_.size(), E = std::size_t(E_);
  std::vector<double> mine(nb * E + 2, 0.0), all(mine.size(), 0.0);
  const double choices = double(samples * T_ * k_);
  for (std::size_t b = 0; b < nb; ++b) {
    const auto* st = blocks_[b]->moe_state(*ws.states[layers_[b]]);
    for (std::size_t e = 0; e < E; ++e) mine[b * E + e] = double(st->rows_per_expert[e]);
    mine[nb * E] += choices - double(st->rows);
    mine[nb * E + 1] += st->aux_sum;
  }
  coll::allreduce(mine.data(), all.data(), int(mine.size()), MPI_DOUBLE, MPI_SUM, comm);
  tokens_.insert(tokens_.end(), all.begin(), all.begin() + std::ptrdiff_t(nb * E));
  dropped_.push_back(all[nb * E]);
  aux_.push_back(all[nb * E + 1] / global_rows);
  ++steps_;
}

template <class T>
NamedFigures MoeLog<T>::summary(int ep, std::int64_t global_batch) const {
  if (blocks_.empty()) return {};
  // the busiest expert's rows over the mean, and the busiest expert rank's (what the all-to-all makes every rank
  // wait for), averaged over steps and MoE blocks
  const std::size_t nb = blocks_.size();
  const std::int64_t El = E_ / ep;
  double imb = 0, rank_imb = 0, dropped = 0;
  for (std::int64_t s = 0; s < steps_; ++s)
    for (std::size_t b = 0; b < nb; ++b) {
      const double* t = tokens_.data() + (std::size_t(s) * nb + b) * std::size_t(E_);
      double sum = 0, mx = 0, rmx = 0;
      for (std::int64_t e = 0; e < E_; ++e) sum += t[e], mx = std::max(mx, t[e]);
      for (std::int64_t r = 0; r < ep; ++r) {
        double x = 0;
        for (std::int64_t e = 0; e < El; ++e) x += t[r * El + e];
        rmx = std::max(rmx, x);
      }
      if (sum > 0) {
        imb += mx / (sum / double(E_));
        rank_imb += rmx / (sum / double(ep));
      }
    }
  const double n = double(std::max<std::int64_t>(1, steps_ * std::int64_t(nb)));
  for (double d : dropped_) dropped += d;
  const double choices = double(global_batch * T_ * k_) * double(nb) * double(std::max<std::int64_t>(1, steps_));
  return {{"expert_load_imbalance", imb / n},
          {"expert_rank_load_imbalance", rank_imb / n},
          {"dropped_fraction", dropped / choices},
          {"aux_loss_last", aux_.empty() ? 0.0 : aux_.back()}};
}

template <class T>
std::vector<io::ExtraDataset> MoeLog<T>::datasets() const {
  if (blocks_.empty()) return {};
  const hsize_t steps = hsize_t(steps_), nb = hsize_t(blocks_.size()), E = hsize_t(E_);
  return {{"/moe/tokens_per_expert", {steps, nb, E}, tokens_,
           {"1", "rows each expert computed per step and MoE block, over the global batch (kept choices)"}},
          {"/moe/dropped", {steps}, dropped_,
           {"1", "choices dropped at the capacity per step, over the global batch and every MoE block"}},
          {"/moe/aux_loss", {steps}, aux_, {"nats", "the load-balancing loss per step (included in the loss)"}}};
}

template class MoeLog<float>;
template class MoeLog<double>;
template class MoeLog<bf16>;
template class MoeLog<fp16>;

}  // namespace partrain::parallel
