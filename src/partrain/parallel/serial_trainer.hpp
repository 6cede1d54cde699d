// The single-process reference (models::ReferenceTrainer) behind the Trainer interface, so that partrain-ref runs
// through the same driver as every strategy and writes the same result file: the baseline of every speedup.
#pragma once

#include "partrain/core/fault.hpp"
#include "partrain/core/timer.hpp"
#include "partrain/kernels/gemm.hpp"
#include "partrain/models/trainer.hpp"
#include "partrain/parallel/precision.hpp"
#include "partrain/parallel/state.hpp"
#include "partrain/parallel/trainer.hpp"

namespace partrain::parallel {

template <class T>
class SerialTrainer : public Trainer<T> {
 public:
  SerialTrainer(models::Model<T>& model, const models::Dataset<T>& data, const models::TrainSpec& spec,
                std::uint64_t model_seed)
      : model_(model), ref_(model, data, spec, model_seed) {}

  StepRecord step(std::int64_t s, const typename Trainer<T>::BeforeUpdate& before_update) override {
    const double w0 = wall_time_s();
    straggle();  // --inject slow
    const double slept = wall_time_s() - w0;
    const auto r = ref_.step(s, [&](const models::Batch<T>&, double loss) {
      if (before_update) before_update(loss);
    });
    StepRecord rec;
    rec.loss = r.loss;
    rec.time_s = r.time_s + slept;
    rec.phase("forward", r.forward_s + slept);
    rec.phase("backward", r.fwd_bwd_s - r.forward_s);
    rec.phase("optimizer", r.optimizer_s);
    rec.phase("busy", rec.time_s);
    log_.record(r.loss_scale, r.skipped);
    return rec;
  }
  std::string describe() const override {
    return std::to_string(model_.params().numel()) + " parameters, one process" +
           (is_half_v<T> ? ", " + precision_name<T>() + " with fp32 master weights" : "");
  }
  std::vector<io::NamedTensor> gather_full(bool grads) override {
    return precision_tensors(ref_.mixed(), model_.params(), grads, model_.params().grads());
  }
  NamedStrings attributes() const override {
    if constexpr (is_half_v<T>) return {{"half_gemm", kernels::half_gemm_kernel(precision_name<T>())}};
    return {};
  }
  std::string step_note(const StepRecord&) const override { return log_.step_note(); }
  std::vector<io::ExtraDataset> datasets() override { return log_.datasets(); }
  NamedFigures summary(const RunMedians&) override { return log_.summary(ref_.mixed()); }
  NamedFigures checkpoint_numbers() const override { return scaler_numbers(ref_.mixed()); }
  void restore_numbers(const std::map<std::string, double>& n) override { restore_scaler(ref_.mixed(), n); }
  bool checkpoints() const override { return true; }
  std::vector<io::TensorPart> state_parts(bool writer) override { return state().parts(writer); }
  void restore_state(const std::vector<io::TensorPart>& parts, std::int64_t steps) override {
    state().restore(parts);
    ref_.mixed().refresh_params(model_.params());  // a 16-bit model's weights from the master weights read
    ref_.optimizer().set_steps(steps);
  }
  std::int64_t optimizer_steps() const override { return ref_.optimizer().steps_taken(); }
  std::array<double, 3> predicted_state_bytes() const override {
    return model_state_bytes<T>(model_.params().numel(), double(ref_.optimizer().state_bytes()));
  }

 private:
  /// The checkpoint's tensors: the parameters (a 16-bit model's fp32 master weights) and the optimizer's moments.
  StateIo<master_t<T>>& state() {
    if (!state_) {
      state_ = std::make_unique<StateIo<master_t<T>>>();
      const auto& ps = model_.params();
      auto& opt = ref_.optimizer();
      state_->add("params", ps, checkpoint_params(ref_.mixed(), ps), true);
      if (opt.m().size()) state_->add("optim/m", ps, opt.m(), true);
      if (opt.v().size()) state_->add("optim/v", ps, opt.v(), true);
    }
    return *state_;
  }
  models::Model<T>& model_;
  models::ReferenceTrainer<T> ref_;
  std::unique_ptr<StateIo<master_t<T>>> state_;
  PrecisionLog<T> log_;
};

}  // namespace partrain::parallel
