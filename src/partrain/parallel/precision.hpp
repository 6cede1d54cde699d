// What every trainer that runs mixed precision (models::MixedPrecision) shows the driver the same way: its gathered
// tensors (a 16-bit model's parameters are its fp32 master weights; its gradients are divided by the loss scale:
// what the optimizer applies), the fp16 loss scaler's state in checkpoints, and the per-step scale and skipped steps
// in the step line and the result file. docs/precision.md.
#pragma once

#include <array>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "partrain/io/result_writer.hpp"
#include "partrain/io/state_dump.hpp"
#include "partrain/models/trainer.hpp"
#include "partrain/parallel/trainer.hpp"

namespace partrain::parallel {

/// A store's tensors as the reference names them, with a 16-bit model's master weights (params) or its gradients
/// `grads` (the store's own, or an fp32 copy of them laid out alike) divided by the loss scale.
template <class T, class G>
std::vector<io::NamedTensor> precision_tensors(const models::MixedPrecision<T>& mp, const models::ParamStore<T>& ps,
                                               bool want_grads, const G& grads) {
  auto out = io::named_tensors(ps, want_grads);
  if constexpr (is_half_v<T>) {
    const double inv = want_grads ? 1.0 / mp.loss_scale() : 1.0;
    auto copy = [&](const auto& view) {
      auto hv = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), view);
      for (std::size_t k = 0; k < out.size(); ++k) {
        const auto& info = ps.infos()[k];
        for (std::int64_t i = 0; i < info.size; ++i) out[k].values[std::size_t(i)] = double(hv(info.offset + i)) * inv;
      }
    };
    if (want_grads) copy(grads);
    else copy(mp.master());
  }
  return out;
}

/// The parameters a checkpoint holds: a 16-bit model's fp32 master weights, else the model's own.
template <class T>
const View1<master_t<T>>& checkpoint_params(const models::MixedPrecision<T>& mp, const models::ParamStore<T>& ps) {
  if constexpr (is_half_v<T>) return mp.master();
  else return ps.params();
}

/// Model-state bytes per replica by the formula: parameters and gradients in T (fp32: 4Ψ + 4Ψ; mixed precision,
/// ZeRO's accounting: 2Ψ + 2Ψ, plus `extra_grad_bytes` for an fp32 reduction buffer), and the optimizer's state plus,
/// for a 16-bit model, its 4Ψ master weights (Adam: 12Ψ in all).
template <class T>
std::array<double, 3> model_state_bytes(std::int64_t numel, double optimizer_state_bytes, double extra_grad_bytes = 0) {
  const double n = double(numel), psi = n * double(sizeof(T));
  const double master = is_half_v<T> ? n * double(sizeof(master_t<T>)) : 0.0;
  return {psi, psi + extra_grad_bytes, optimizer_state_bytes + master};
}

/// The fp16 scaler's state for the checkpoint's metadata, and back (T: the run's storage type; nothing unless fp16).
template <class T>
NamedFigures scaler_numbers_of(const models::LossScaler& s) {
  if (!std::is_same_v<T, fp16>) return {};
  return {{"loss_scale", s.scale()}, {"loss_scale_growth_tracker", double(s.growth_tracker())},
          {"skipped_steps", double(s.skipped())}};
}
template <class T>
void restore_scaler_of(models::LossScaler& s, const std::map<std::string, double>& n) {
  if (!std::is_same_v<T, fp16> || !n.count("loss_scale")) return;  // an fp32/bf16 checkpoint: the scaler starts fresh
  s.restore(n.at("loss_scale"), std::int64_t(n.at("loss_scale_growth_tracker")), std::int64_t(n.at("skipped_steps")));
}
template <class T>
NamedFigures scaler_numbers(const models::MixedPrecision<T>& mp) {
  return scaler_numbers_of<T>(mp.scaler());
}
template <class T>
void restore_scaler(models::MixedPrecision<T>& mp, const std::map<std::string, double>& n) {
  restore_scaler_of<T>(mp.scaler(), n);
}

/// Per step: the scale the loss was multiplied by and whether the update was skipped.
template <class T>
class PrecisionLog {
 public:
  void record(double loss_scale, bool skipped) {
    scale_.push_back(loss_scale);
    skipped_.push_back(skipped ? 1.0 : 0.0);
  }
  std::string step_note() const {
    if (!std::is_same_v<T, fp16> || scale_.empty()) return "";
    char b[64];
    std::snprintf(b, sizeof b, "scale %g%s", scale_.back(), skipped_.back() > 0 ? " SKIPPED (inf/NaN)" : "");
    return b;
  }
  std::vector<io::ExtraDataset> datasets() const {
    if (!is_half_v<T>) return {};
    const hsize_t n = hsize_t(scale_.size());
    return {{"/steps/loss_scale", {n}, scale_, {"1", "factor the step's loss was multiplied by (fp16 loss scaling; 1 for bf16)"}},
            {"/steps/skipped", {n}, skipped_, {"1", "1 where the step's gradients held inf/NaN and its update was skipped"}}};
  }
  NamedFigures summary(const models::LossScaler& s) const {
    if (!std::is_same_v<T, fp16>) return {};
    return {{"skipped_steps", double(s.skipped())}, {"final_loss_scale", s.scale()}};
  }
  NamedFigures summary(const models::MixedPrecision<T>& mp) const { return summary(mp.scaler()); }

 private:
  std::vector<double> scale_, skipped_;
};

}  // namespace partrain::parallel
