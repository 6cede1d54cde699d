// The single-process training loop: the reference every strategy is checked against, and the loop the mini-apps
// reuse. Per step: fill the global batch (untimed: data generation is not training), then, timed with fences,
// zero the gradients, forward + loss + backward over the whole batch, optimizer update.
// With a 16-bit T (train.precision bf16 / fp16) the model computes and stores in T and the optimizer keeps fp32
// master weights and state (MixedPrecision): it updates the master copy and refreshes the model's 16-bit weights;
// fp16 scales the loss (LossScaler) and skips a step whose gradients overflowed.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "partrain/kernels/elementwise.hpp"
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
  double loss_scale = 1;      ///< the scale this step's loss was multiplied by (fp16; 1 otherwise)
  bool skipped = false;       ///< fp16: the gradients held inf/NaN and the update was skipped
};

/// The fp32 master copy of a 16-bit model's parameters, the loss scaler, and the step that joins them to the
/// optimizer. For fp32 and fp64 models it holds nothing and step() is the plain optimizer step.
template <class T>
class MixedPrecision {
 public:
  /// `seed`: the model's; the master weights take its initial values unrounded. Without it they are the 16-bit
  /// parameters widened. `shared`: a scaler the caller owns and several stores use (the pipeline's chunks).
  MixedPrecision(ParamStore<T>& ps, std::optional<std::uint64_t> seed, const TrainSpec& spec,
                 LossScaler* shared = nullptr)
      : enabled_(is_half_v<T>), fp16_(std::is_same_v<T, fp16>), own_(spec.loss_scale), shared_(shared) {
    if (!enabled_) return;
    master_ = View1<master_t<T>>("optim/master", ps.numel());
    if (seed) {
      reset_master(ps, *seed);
    } else {
      kernels::convert("partrain::mixed::widen", master_, ps.params());
    }
  }
  /// The master weights from the model's initialisation, unrounded (a fresh run).
  void reset_master(const ParamStore<T>& ps, std::uint64_t seed) {
    if (!enabled_) return;
    auto h = Kokkos::create_mirror_view(master_);
    ps.init_values(seed, 0, ps.numel(), h.data());
    Kokkos::deep_copy(master_, h);
  }
  bool enabled() const { return enabled_; }
  /// What the loss is multiplied by before backward.
  double loss_scale() const { return fp16_ ? scaler().scale() : 1.0; }
  /// The optimizer step: the plain one, or the master update from the (scaled) 16-bit gradients, skipped on
  /// inf/NaN under fp16. Returns whether the update ran.
  bool step(Optimizer<master_t<T>>& opt, ParamStore<T>& ps) { return step(opt, ps, ps.grads()); }
  /// Turns this rank's "the gradients hold inf/NaN" into its group's: ranks whose gradients differ (tensor-parallel
  /// shards, pipeline stages) must skip the same steps. Empty: this rank's answer.
  using Agree = std::function<bool(bool)>;
  /// The same from gradients held elsewhere (a 16-bit model's gradients reduced in fp32).
  template <class G>
  bool step(Optimizer<master_t<T>>& opt, ParamStore<T>& ps, const G& grads, const Agree& agree = {}) {
    if constexpr (!is_half_v<T>) {
      opt.step(ps.params(), ps.grads());
      return true;
    } else {
      const double used = loss_scale();  // what the gradients carry (the scaler may move it below)
      if (fp16_) {
        const bool mine = kernels::nonfinite_count(grads) > 0;
        if (!scaler().update(agree ? agree(mine) : mine)) return false;
      }
      update(opt, ps, grads, used);
      return true;
    }
  }
  /// The master update alone, from gradients that carry `scale` (the caller's scaler decided the step runs: a
  /// trainer whose store is split in several, as the pipeline's chunks, keeps one scaler for all of them).
  template <class G>
  void update(Optimizer<master_t<T>>& opt, ParamStore<T>& ps, const G& grads, double scale) {
    if constexpr (!is_half_v<T>) {
      opt.step(ps.params(), ps.grads());
    } else {
      opt.begin_step();
      opt.update_mixed(master_, grads, 0, master_t<T>(1.0 / scale), ps.params());
    }
  }
  /// The model's 16-bit weights from the master copy (after a checkpoint's master weights are read back).
  void refresh_params(ParamStore<T>& ps) const {
    if constexpr (is_half_v<T>) kernels::convert("partrain::mixed::refresh", ps.params(), master_);
  }
  const View1<master_t<T>>& master() const { return master_; }
  LossScaler& scaler() { return shared_ ? *shared_ : own_; }
  const LossScaler& scaler() const { return shared_ ? *shared_ : own_; }

 private:
  bool enabled_, fp16_;
  LossScaler own_;
  LossScaler* shared_;
  View1<master_t<T>> master_;
};

template <class T>
class ReferenceTrainer {
 public:
  /// Called after the last step's backward, before its update (for --dump-state).
  using BeforeUpdate = std::function<void(const Batch<T>& batch, double loss)>;
  /// Called after every step (progress line).
  using AfterStep = std::function<void(std::int64_t step, const StepRecord& rec)>;

  /// model_seed: the model's (mixed precision initialises its fp32 master weights from it).
  ReferenceTrainer(Model<T>& model, const Dataset<T>& data, const TrainSpec& spec,
                   std::optional<std::uint64_t> model_seed = std::nullopt)
      : model_(model), data_(data), spec_(spec), opt_(spec.optimizer, model.params().numel()),
        mixed_(model.params(), model_seed, spec), batch_(data.allocate(spec.global_batch)),
        ws_(model.make_workspace(spec.global_batch)) {}

  std::vector<StepRecord> run(const AfterStep& after = {}, const BeforeUpdate& before_last_update = {});
  /// One step (step numbers start at 0 and key the data).
  StepRecord step(std::int64_t step, const BeforeUpdate& before_update = {});

  Optimizer<master_t<T>>& optimizer() { return opt_; }
  const Optimizer<master_t<T>>& optimizer() const { return opt_; }
  MixedPrecision<T>& mixed() { return mixed_; }
  const MixedPrecision<T>& mixed() const { return mixed_; }
  const Batch<T>& batch() const { return batch_; }

 private:
  Model<T>& model_;
  const Dataset<T>& data_;
  TrainSpec spec_;
  Optimizer<master_t<T>> opt_;
  MixedPrecision<T> mixed_;
  Batch<T> batch_;
  typename Model<T>::Workspace ws_;
};

extern template class ReferenceTrainer<float>;
extern template class ReferenceTrainer<double>;
extern template class ReferenceTrainer<bf16>;
extern template class ReferenceTrainer<fp16>;

}  // namespace partrain::models
