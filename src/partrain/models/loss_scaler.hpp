// Dynamic loss scaling for fp16 training, with PyTorch's GradScaler rules (torch.amp.GradScaler):
//   the loss (and so every gradient) is multiplied by `scale` before backward, so that small gradients do not
//   flush to zero in fp16; the optimizer divides the gradients by it again in fp32. A step whose gradients hold an
//   inf or NaN is skipped (no update, the optimizer's step count unchanged) and the scale is multiplied by
//   backoff_factor; after growth_interval consecutive finite steps it is multiplied by growth_factor.
// A static scaler (dynamic = false) keeps its scale and still skips non-finite steps (Megatron's constant scaler).
// The scale and the count of finite steps since the last change are training state: checkpoints keep them.
#pragma once

#include <cstdint>

namespace partrain::models {

struct LossScalerConfig {
  double initial = 65536.0;  ///< 2^16, GradScaler's init_scale
  double growth_factor = 2.0, backoff_factor = 0.5;
  std::int64_t growth_interval = 2000;
  bool dynamic = true;
};

class LossScaler {
 public:
  LossScaler() = default;
  explicit LossScaler(const LossScalerConfig& cfg) : cfg_(cfg), scale_(cfg.initial) {}

  double scale() const { return scale_; }
  std::int64_t growth_tracker() const { return good_; }
  std::int64_t skipped() const { return skipped_; }

  /// After a step's gradients are checked: returns whether the step's update runs (its gradients are finite), and
  /// moves the scale for the next step.
  bool update(bool found_inf) {
    if (found_inf) {
      ++skipped_;
      good_ = 0;
      if (cfg_.dynamic) scale_ *= cfg_.backoff_factor;
      return false;
    }
    if (cfg_.dynamic && ++good_ == cfg_.growth_interval) {
      scale_ *= cfg_.growth_factor;
      good_ = 0;
    }
    return true;
  }
  /// A checkpoint's state back.
  void restore(double scale, std::int64_t growth_tracker, std::int64_t skipped) {
    scale_ = scale;
    good_ = growth_tracker;
    skipped_ = skipped;
  }

 private:
  LossScalerConfig cfg_;
  double scale_ = 1.0;
  std::int64_t good_ = 0, skipped_ = 0;
};

}  // namespace partrain::models
