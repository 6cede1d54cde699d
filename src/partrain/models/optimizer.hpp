// An optimizer over one flat parameter buffer and its gradient, owning its state ("optim/…" allocations):
// SGD (momentum buffer only when momentum > 0), Adam (L2) and AdamW (decoupled weight decay). The update maths is
// in kernels/optimizer.hpp. ZeRO shards call it on their slice of the buffers.
#pragma once

#include <string>

#include "partrain/kernels/optimizer.hpp"

namespace partrain::models {

struct OptimizerConfig {
  std::string kind = "adamw";  ///< sgd | adam | adamw
  double lr = 1e-3, momentum = 0.0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

template <class T>
class Optimizer {
 public:
  Optimizer(const OptimizerConfig& cfg, std::int64_t numel) : cfg_(cfg) {
    if (cfg.kind == "sgd") {
      if (cfg.momentum > 0) m_ = View1<T>("optim/sgd.momentum", numel);
    } else {
      m_ = View1<T>("optim/adam.m", numel);
      v_ = View1<T>("optim/adam.v", numel);
    }
  }

  /// One update of p from g; p and g are views of `numel` elements.
  void step(const View1<T>& p, const View1<T>& g) {
    ++steps_;
    if (cfg_.kind == "sgd") {
      kernels::sgd_step(p, g, m_, kernels::SgdParams{cfg_.lr, cfg_.momentum, cfg_.weight_decay});
    } else {
      kernels::AdamParams hp{cfg_.lr, cfg_.beta1, cfg_.beta2, cfg_.eps, cfg_.weight_decay, cfg_.kind == "adamw"};
      kernels::adam_step(p, g, m_, v_, hp, steps_);
    }
  }

  /// Bytes of optimizer state.
  std::int64_t state_bytes() const { return std::int64_t((m_.size() + v_.size()) * sizeof(T)); }
  std::int64_t steps_taken() const { return steps_; }

 private:
  OptimizerConfig cfg_;
  View1<T> m_, v_;
  std::int64_t steps_ = 0;
};

}  // namespace partrain::models
