// The single-process training loop: the reference every strategy is checked against, and the loop the mini-apps
// reuse. Per step: fill the global batch (untimed: data generation is not training), then, timed with fences,
// zero the gradients, forward + loss + backward over the whole batch, optimizer update.
#pragma once

#include <functional>
#include <vector>

#include "partrain/models/datasets.hpp"
#include "partrain/models/model.hpp"
#include "partrain/models/model_config.hpp"
#include "partrain/models/optimizer.hpp"

namespace partrain::models {

struct StepRecord {
  double loss = 0;            ///< mean over the global batch
  double time_s = 0;          ///< compute time of the step (forward, backward, optimizer)
  double fwd_bwd_s = 0;       ///< forward + loss + backward
  double forward_s = 0;       ///< forward + loss (part of fwd_bwd_s)
  double optimizer_s = 0;
};

template <class T>
class ReferenceTrainer {
 public:
  /// Called after the last step's backward, before its update (for --dump-state).
  using BeforeUpdate = std::function<void(const Batch<T>& batch, double loss)>;
  /// Called after every step (progress line).
  using AfterStep = std::function<void(std::int64_t step, const StepRecord& rec)>;

  ReferenceTrainer(Model<T>& model, const Dataset<T>& data, const TrainSpec& spec)
      : model_(model), data_(data), spec_(spec), opt_(spec.optimizer, model.params().numel()),
        batch_(data.allocate(spec.global_batch)), ws_(model.make_workspace(spec.global_batch)) {}

  std::vector<StepRecord> run(const AfterStep& after = {}, const BeforeUpdate& before_last_update = {});
  /// One step (step numbers start at 0 and key the data).
  StepRecord step(std::int64_t step, const BeforeUpdate& before_update = {});

  Optimizer<T>& optimizer() { return opt_; }
  const Optimizer<T>& optimizer() const { return opt_; }
  const Batch<T>& batch() const { return batch_; }

 private:
  Model<T>& model_;
  const Dataset<T>& data_;
  TrainSpec spec_;
  Optimizer<T> opt_;
  Batch<T> batch_;
  typename Model<T>::Workspace ws_;
};

extern template class ReferenceTrainer<float>;
extern template class ReferenceTrainer<double>;

}  // namespace partrain::models
