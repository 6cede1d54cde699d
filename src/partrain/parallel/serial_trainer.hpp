// The single-process reference (models::ReferenceTrainer) behind the Trainer interface, so that partrain-ref runs
// through the same driver as every strategy and writes the same result file: the baseline of every speedup.
#pragma once

#include "partrain/core/fault.hpp"
#include "partrain/core/timer.hpp"
#include "partrain/kernels/gemm.hpp"
#include "partrain/models/trainer.hpp"
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
    loss_scale_.push_back(r.loss_scale);
    skipped_.push_back(r.skipped ? 1.0 : 0.0);
    return rec;
  }
  std::string describe() const override {
    return std::to_string(model_.params().numel()) + " parameters, one process" +
           (is_half_v<T> ? ", " + precision_name<T>() + " with fp32 master weights" : "");
  }
  /// A 16-bit model's parameters are its fp32 master weights, and its gradients are divided by the loss scale:
  /// what the optimizer applies.
  std::vector<io::NamedTensor> gather_full(bool grads) override {
    auto out = io::named_tensors(model_.params(), grads);
    if constexpr (is_half_v<T>) {
      const auto& ps = model_.params();
      if (!grads) {
        auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ref_.mixed().master());
        for (std::size_t k = 0; k < out.size(); ++k)
          out[k].values.assign(h.data() + ps.infos()[k].offset, h.data() + ps.infos()[k].offset + ps.infos()[k].size);
      } else {
        const double inv = 1.0 / ref_.mixed().loss_scale();
        for (auto& t : out)
          for (auto& v : t.values) v *= inv;
      }
    }
    return out;
  }
  NamedStrings attributes() const override {
    if constexpr (is_half_v<T>) return {{"half_gemm", kernels::half_gemm_kernel(precision_name<T>())}};
    return {};
  }
  std::string step_note(const StepRecord&) const override {
    if (!std::is_same_v<T, fp16> || loss_scale_.empty()) return "";
    char b[64];
    std::snprintf(b, sizeof b, "scale %g%s", loss_scale_.back(), skipped_.back() > 0 ? " SKIPPED (inf/NaN)" : "");
    return b;
  }
  std::vector<io::ExtraDataset> datasets() override {
    if (!is_half_v<T>) return {};
    const hsize_t n = hsize_t(loss_scale_.size());
    return {{"/steps/loss_scale", {n}, loss_scale_, {"1", "factor the step's loss was multiplied by (fp16 loss scaling; 1 for bf16)"}},
            {"/steps/skipped", {n}, skipped_, {"1", "1 where the step's gradients held inf/NaN and its update was skipped"}}};
  }
  NamedFigures summary(const RunMedians&) override {
    if (!std::is_same_v<T, fp16>) return {};
    return {{"skipped_steps", double(ref_.mixed().scaler().skipped())},
            {"final_loss_scale", ref_.mixed().scaler().scale()}};
  }
  NamedFigures checkpoint_numbers() const override {
    if (!std::is_same_v<T, fp16>) return {};
    const auto& s = ref_.mixed().scaler();
    return {{"loss_scale", s.scale()}, {"loss_scale_growth_tracker", double(s.growth_tracker())},
            {"skipped_steps", double(s.skipped())}};
  }
  void restore_numbers(const std::map<std::string, double>& n) override {
    if (!std::is_same_v<T, fp16> || !n.count("loss_scale")) return;  // fp32/bf16 checkpoint: the scaler starts fresh
    ref_.mixed().scaler().restore(n.at("loss_scale"), std::int64_t(n.at("loss_scale_growth_tracker")),
                                  std::int64_t(n.at("skipped_steps")));
  }
  bool checkpoints() const override { return true; }
  std::vector<io::TensorPart> state_parts(bool writer) override { return state().parts(writer); }
  void restore_state(const std::vector<io::TensorPart>& parts, std::int64_t steps) override {
    state().restore(parts);
    ref_.mixed().refresh_params(model_.params());  // a 16-bit model's weights from the master weights read
    ref_.optimizer().set_steps(steps);
  }
  std::int64_t optimizer_steps() const override { return ref_.optimizer().steps_taken(); }
  /// fp32: 4Ψ + 4Ψ + KΨ; mixed precision, ZeRO's accounting: 2Ψ parameters, 2Ψ gradients, and the optimizer's
  /// 4Ψ master weights besides its moments (12Ψ for Adam).
  std::array<double, 3> predicted_state_bytes() const override {
    const double n = double(model_.params().numel()), psi = n * double(sizeof(T));
    const double master = is_half_v<T> ? n * double(sizeof(master_t<T>)) : 0.0;
    return {psi, psi, double(ref_.optimizer().state_bytes()) + master};
  }

 private:
  /// The checkpoint's tensors: the parameters (a 16-bit model's fp32 master weights) and the optimizer's moments.
  StateIo<master_t<T>>& state() {
    if (!state_) {
      state_ = std::make_unique<StateIo<master_t<T>>>();
      const auto& ps = model_.params();
      auto& opt = ref_.optimizer();
      if constexpr (is_half_v<T>) state_->add("params", ps, ref_.mixed().master(), true);
      else state_->add("params", ps, ps.params(), true);
      if (opt.m().size()) state_->add("optim/m", ps, opt.m(), true);
      if (opt.v().size()) state_->add("optim/v", ps, opt.v(), true);
    }
    return *state_;
  }
  models::Model<T>& model_;
  models::ReferenceTrainer<T> ref_;
  std::unique_ptr<StateIo<master_t<T>>> state_;
  std::vector<double> loss_scale_, skipped_;  // per step
};

}  // namespace partrain::parallel
