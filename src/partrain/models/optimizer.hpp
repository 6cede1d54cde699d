// An optimizer over one flat parameter buffer and its gradient, owning its state ("optim/…" allocations):
// SGD (momentum buffer only when momentum > 0), Adam (L2), AdamW (decoupled weight decay) and AdaGrad (its accumulator
// of squared gradients in v; the sparse parameter servers' optimizer, docs/ps.md "Hybrid"). The update maths is
// in kernels/optimizer.hpp. ZeRO shards call it on their slice of the buffers.
#pragma once

#include <string>

#include "partrain/kernels/optimizer.hpp"

namespace partrain::models {

struct OptimizerConfig {
  std::string kind = "adamw";  ///< sgd | adam | adamw | adagrad
  double lr = 1e-3, momentum = 0.0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

/// The state lives in `Space` (the default memory space, or Kokkos::HostSpace for ZeRO-Offload's host optimizer) and
/// the update runs in that space's execution space. A sharded strategy updates several ranges of one step with
/// begin_step() and update(p, g, offset): the state of the range is at [offset, offset + len) (one step count).
template <class T, class Space = MemSpace>
class Optimizer {
 public:
  using StateView = Kokkos::View<T*, Kokkos::LayoutRight, Space>;

  /// `numel` elements of state per buffer; `label` prefixes the allocations ("optim/" counts them as optimizer state).
  Optimizer(const OptimizerConfig& cfg, std::int64_t numel, const std::string& label = "optim/") : cfg_(cfg) {
    if (cfg.kind == "sgd") {
      if (cfg.momentum > 0) m_ = StateView(label + "sgd.momentum", numel);
    } else if (cfg.kind == "adagrad") {
      v_ = StateView(label + "adagrad.sum", numel);
    } else {
      m_ = StateView(label + "adam.m", numel);
      v_ = StateView(label + "adam.v", numel);
    }
  }

  /// One update of p from g; p and g are views of `numel` elements.
  void step(const StateView& p, const StateView& g) {
    begin_step();
    update(p, g, 0);
  }

  /// Starts a step whose ranges update() then applies (Adam's bias correction counts steps, not ranges).
  void begin_step() { ++steps_; }
  /// Updates p from g (n elements each, in Space) with the state's elements [offset, offset + n).
  void update(const StateView& p, const StateView& g, std::int64_t offset) {
    const std::int64_t n = std::int64_t(p.extent(0));
    auto part = [&](const StateView& s) {
      return s.size() ? StateView(Kokkos::subview(s, Kokkos::make_pair(offset, offset + n))) : s;
    };
    if (cfg_.kind == "sgd") {
      kernels::sgd_step(p, g, part(m_), kernels::SgdParams{cfg_.lr, cfg_.momentum, cfg_.weight_decay});
    } else if (cfg_.kind == "adagrad") {
      kernels::adagrad_step(p, g, part(v_), kernels::AdagradParams{cfg_.lr, cfg_.eps, cfg_.weight_decay});
    } else {
      kernels::AdamParams hp{cfg_.lr, cfg_.beta1, cfg_.beta2, cfg_.eps, cfg_.weight_decay, cfg_.kind == "adamw"};
      kernels::adam_step(p, g, part(m_), part(v_), hp, steps_);
    }
  }

  /// Mixed precision: updates the fp32 master range `master` from the gradient g·grad_scale (16-bit, or fp32 where
  /// the gradients were reduced in fp32) and writes the updated values, rounded, into the 16-bit parameters `half`
  /// (same length; state at [offset, offset + n)).
  template <class G, class H>
  void update_mixed(const StateView& master, const G& g, std::int64_t offset, T grad_scale, const H& half) {
    const std::int64_t n = std::int64_t(master.extent(0));
    auto part = [&](const StateView& s) {
      return s.size() ? StateView(Kokkos::subview(s, Kokkos::make_pair(offset, offset + n))) : s;
    };
    if (cfg_.kind == "sgd") {
      kernels::sgd_step(master, g, part(m_), kernels::SgdParams{cfg_.lr, cfg_.momentum, cfg_.weight_decay},
                        grad_scale, half);
    } else if (cfg_.kind == "adagrad") {
      kernels::adagrad_step(master, g, part(v_), kernels::AdagradParams{cfg_.lr, cfg_.eps, cfg_.weight_decay},
                            grad_scale, half);
    } else {
      kernels::AdamParams hp{cfg_.lr, cfg_.beta1, cfg_.beta2, cfg_.eps, cfg_.weight_decay, cfg_.kind == "adamw"};
      kernels::adam_step(master, g, part(m_), part(v_), hp, steps_, grad_scale, half);
    }
  }

  /// Bytes of optimizer state.
  std::int64_t state_bytes() const { return std::int64_t((m_.size() + v_.size()) * sizeof(T)); }
  std::int64_t steps_taken() const { return steps_; }
  /// Restores the step count (a checkpoint's).
  void set_steps(std::int64_t n) { steps_ = n; }
  const OptimizerConfig& config() const { return cfg_; }
  /// The state buffers (Adam's m and v; SGD's momentum in m; AdaGrad's accumulator in v; empty where the optimizer keeps none).
  const StateView& m() const { return m_; }
  const StateView& v() const { return v_; }

 private:
  OptimizerConfig cfg_;
  StateView m_, v_;
  std::int64_t steps_ = 0;
};

}  // namespace partrain::models
