#include "partrain/models/trainer.hpp"

#include "partrain/core/timer.hpp"

namespace partrain::models {

template <class T>
StepRecord ReferenceTrainer<T>::step(std::int64_t step, const BeforeUpdate& before_update) {
  data_.fill(std::uint64_t(step), 0, batch_);
  StepRecord rec;
  const double t0 = fenced_time_s();
  model_.params().zero_grad();
  const std::int64_t counted = data_.loss_rows(std::uint64_t(step), 0, batch_.samples);
  const double rows = double(counted >= 0 ? counted : batch_.samples * model_.rows_per_sample());
  double t_fwd = t0;
  typename Model<T>::Hooks hooks;
  hooks.forward_done = [&] { t_fwd = fenced_time_s(); };
  rec.loss_scale = mixed_.loss_scale();
  rec.loss = model_.forward_backward(batch_, ws_, rec.loss_scale / rows, hooks) / rows;
  model_.finalize_grads();
  const double t1 = fenced_time_s();
  if (before_update) before_update(batch_, rec.loss);
  const double t2 = fenced_time_s();
  rec.skipped = !mixed_.step(opt_, model_.params());
  const double t3 = fenced_time_s();
  rec.fwd_bwd_s = t1 - t0;
  rec.forward_s = t_fwd - t0;
  rec.optimizer_s = t3 - t2;
  rec.time_s = rec.fwd_bwd_s + rec.optimizer_s;
  return rec;
}

template <class T>
std::vector<StepRecord> ReferenceTrainer<T>::run(const AfterStep& after, const BeforeUpdate& before_last_update) {
  std::vector<StepRecord> records;
  for (std::int64_t s = 0; s < spec_.steps; ++s) {
    const bool last = s + 1 == spec_.steps;
    records.push_back(step(s, last ? before_last_update : BeforeUpdate{}));
    if (after) after(s, records.back());
  }
  return records;
}

template class ReferenceTrainer<float>;
template class ReferenceTrainer<double>;
template class ReferenceTrainer<bf16>;
template class ReferenceTrainer<fp16>;

}  // namespace partrain::models
