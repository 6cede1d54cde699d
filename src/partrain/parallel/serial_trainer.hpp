// The single-process reference (models::ReferenceTrainer) behind the Trainer interface, so that partrain-ref runs
// through the same driver as every strategy and writes the same result file: the baseline of every speedup.
#pragma once

#include "partrain/core/fault.hpp"
#include "partrain/core/timer.hpp"
#include "partrain/models/trainer.hpp"
#include "partrain/parallel/state.hpp"
#include "partrain/parallel/trainer.hpp"

namespace partrain::parallel {

template <class T>
class SerialTrainer : public Trainer<T> {
 public:
  SerialTrainer(models::Model<T>& model, const models::Dataset<T>& data, const models::TrainSpec& spec)
      : model_(model), ref_(model, data, spec) {}

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
    return rec;
  }
  std::string describe() const override {
    return std::to_string(model_.params().numel()) + " parameters, one process";
  }
  std::vector<io::NamedTensor> gather_full(bool grads) override { return io::named_tensors(model_.params(), grads); }
  bool checkpoints() const override { return true; }
  std::vector<io::TensorPart> state_parts(bool writer) override { return state().parts(writer); }
  void restore_state(const std::vector<io::TensorPart>& parts, std::int64_t steps) override {
    state().restore(parts);
    ref_.optimizer().set_steps(steps);
  }
  std::int64_t optimizer_steps() const override { return ref_.optimizer().steps_taken(); }
  std::array<double, 3> predicted_state_bytes() const override {
    const double psi = double(model_.params().numel()) * double(sizeof(T));
    return {psi, psi, double(ref_.optimizer().state_bytes())};
  }

 private:
  StateIo<T>& state() {
    if (!state_) {
      state_ = std::make_unique<StateIo<T>>();
      const auto& ps = model_.params();
      auto& opt = ref_.optimizer();
      state_->add("params", ps, ps.params(), true);
      if (opt.m().size()) state_->add("optim/m", ps, opt.m(), true);
      if (opt.v().size()) state_->add("optim/v", ps, opt.v(), true);
    }
    return *state_;
  }
  models::Model<T>& model_;
  models::ReferenceTrainer<T> ref_;
  std::unique_ptr<StateIo<T>> state_;
};

}  // namespace partrain::parallel
