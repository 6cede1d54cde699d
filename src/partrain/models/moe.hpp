// The mixture-of-experts feed-forward of the reference GPT (docs/moe.md): in every `moe.every`-th block the MLP is
// replaced by E expert MLPs (each C → 4C → C, GELU, like the dense one) behind a router.
//
//   logits = h·W_rᵀ [N, E],  p = softmax(logits)
//   top-k experts per token (k = 1: gate = p_e, Switch; k = 2: gates p_e / (p_e1 + p_e2), GShard/Mixtral; ties go
//   to the lower expert index)
//   capacity: each SEQUENCE (the routing group) sends at most cap = ⌈capacity_factor · k · T / E⌉ tokens to an
//   expert; assignments are served first choices first, each in token order (GShard), and what is over the
//   capacity is dropped: that choice contributes nothing and the token keeps its residual.
//   y_t = Σ_{kept j} gate_tj · expert_{e_tj}(h_t)
//   auxiliary loss (Switch): per sequence s, aux_s = coef · E · Σ_e f_se · P_se, f_se = the fraction of its tokens
//   whose first choice is e (before capacity), P_se = the mean of p_te over its tokens; the model's loss adds
//   mean_s aux_s (each sequence's aux counted T times among the per-row losses, so the global mean is right).
//
// Routing per sequence makes the step independent of how sequences are split over ranks and microbatches, which
// is what lets expert parallelism equal the reference (DESIGN.md, Determinism).
//
// Dispatched rows are laid out expert-major: expert e's rows, sequence by sequence, each sequence's in priority
// order. The experts this layer computes run on those rows; where the experts live on other ranks an
// ExpertExchange moves the rows there and back (parallel/ep/). The backward overlaps both of its exchanges with
// work that does not wait for them: the output gradients travel to the experts while the router's backward runs,
// and the input gradients travel back while the experts' weight gradients are computed (Megatron-Core's delayed
// weight-gradient computation).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "partrain/models/layer.hpp"

namespace partrain::models {

struct MoeConfig {
  std::int64_t every = 0;         ///< every `every`-th block is an MoE block (0: none)
  std::int64_t experts = 8;       ///< E
  std::int64_t top_k = 1;         ///< k: 1 or 2
  double capacity_factor = 1.25;  ///< capacity per expert and sequence: ⌈factor · k · T / E⌉
  double aux_loss_coef = 0.01;    ///< the load-balancing loss's coefficient
  bool enabled() const { return every > 0; }
  /// Block l (0-based) is an MoE block: l % every == every − 1 (every = 2: blocks 1, 3, …).
  bool is_moe_block(std::int64_t l) const { return every > 0 && l % every == every - 1; }
  std::int64_t capacity(std::int64_t seq_len) const;
};

/// Whether a parameter (the reference's name) is an expert's: "blocks.<l>.moe.experts.<e>.…".
inline bool is_expert_parameter(const std::string& name) { return name.find(".moe.experts.") != std::string::npos; }

/// How the rows of one MoE layer's microbatch travel between this rank and the experts' ranks.
struct ExchangePlan {
  std::vector<std::int64_t> send_rows, recv_rows;  ///< per peer
  std::vector<std::int64_t> local_rows;            ///< per local expert: the rows this rank computes
  std::int64_t received = 0;                       ///< Σ local_rows
  Kokkos::View<std::int64_t*, MemSpace> order;     ///< expert-major row i ← received row order(i)
};

template <class T>
class ExpertExchange {
 public:
  virtual ~ExpertExchange() = default;
  /// `rows_per_expert`: this rank's dispatched rows for each of the E experts. Fills `plan` (collective over the
  /// experts' ranks: the counts are exchanged first).
  virtual void plan(const std::vector<std::int64_t>& rows_per_expert, ExchangePlan& plan) = 0;
  /// send [Σ rows, C] expert-major → recv [plan.received, C], the local experts' rows expert-major: posted by
  /// start_dispatch (`send` must stay untouched), done by finish_dispatch. One exchange in flight at a time.
  virtual void start_dispatch(const ExchangePlan& plan, const View2<T>& send) = 0;
  virtual void finish_dispatch(const ExchangePlan& plan, const View2<T>& recv) = 0;
  /// The reverse: the local experts' rows [plan.received, C] back to `back` [Σ rows, C], laid out like `send`.
  virtual void start_combine(const ExchangePlan& plan, const View2<T>& local, const View2<T>& back) = 0;
  virtual void finish_combine() = 0;
  /// Moves what is in flight along (called between the computations it overlaps).
  virtual void progress() {}
  void dispatch(const ExchangePlan& p, const View2<T>& send, const View2<T>& recv) {
    start_dispatch(p, send);
    finish_dispatch(p, recv);
  }
  void combine(const ExchangePlan& p, const View2<T>& local, const View2<T>& back) {
    start_combine(p, local, back);
    finish_combine();
  }
};

/// One microbatch's routing and saved activations.
template <class T>
struct MoeState {
  View2<T> logits, dlogits;                   ///< [N, E]
  View2<acc_t<T>> probs, gate, dgate;         ///< [N, E], [N, k], [N, k]
  View2<std::int64_t> choice, slot;           ///< [N, k]: the expert; the dispatched row (−1: dropped)
  View2<std::int64_t> count, offset;          ///< [S, E]: kept rows per sequence and expert; where they begin
  View2<acc_t<T>> frac;                       ///< [S, E]: f_se
  View1<acc_t<T>> aux;                        ///< [S]: aux_s
  View2<T> x_disp, y_disp;                    ///< [R_max, C]: dispatched rows, in and out (this rank's tokens)
  View2<T> x_loc, fc, fcg, y_loc;             ///< the local experts' rows (aliases of x/y_disp with no exchange)
  std::vector<std::int64_t> rows_per_expert;  ///< this microbatch's kept rows per expert (all E)
  std::int64_t rows = 0, first_choice_rows = 0;  ///< rows dispatched; of them, first choices
  double aux_sum = 0;                         ///< Σ_s T · aux_s
  ExchangePlan plan;
};

template <class T>
class MoeFeedForward {
 public:
  /// `prefix`: "blocks.<l>.moe"; experts [first, first + local) are held here (all of them without expert
  /// parallelism).
  MoeFeedForward(const MoeConfig& cfg, std::int64_t channels, std::int64_t seq_len, std::string prefix,
                 double proj_std, std::int64_t first = 0, std::int64_t local = -1);
  void declare(ParamStore<T>& ps);
  void bind(const ParamStore<T>& ps);
  std::unique_ptr<MoeState<T>> make_state(std::int64_t rows) const;
  /// y = moe(h); h, y: [rows, C].
  void forward(const View2<T>& h, const View2<T>& y, MoeState<T>& st);
  /// dh = ∂/∂h of (loss·scale) given dy (overwritten); parameter gradients accumulated; `scale` is the factor the
  /// loss gradient carries (for the auxiliary loss's own gradient).
  void backward(const View2<T>& h, const View2<T>& dy, const View2<T>& dh, MoeState<T>& st, double scale);
  /// Where the experts are computed (null: all here).
  void set_exchange(ExpertExchange<T>* ex) { exchange_ = ex; }
  const MoeConfig& config() const { return cfg_; }
  std::int64_t first_expert() const { return first_; }
  std::int64_t local_experts() const { return local_; }
  /// Forward FLOPs for `rows` tokens when every choice is kept (router + k expert MLPs).
  double forward_flops(std::int64_t rows) const;
  double activation_elements(std::int64_t rows) const;

 private:
  struct Expert {
    View2<T> fc_w, proj_w;
    View1<T> fc_b, proj_b;
  };
  std::string expert_name(std::int64_t e) const { return prefix_ + ".experts." + std::to_string(e); }
  std::int64_t max_rows(std::int64_t rows) const;
  std::int64_t max_expert_rows(std::int64_t rows) const;
  void run_experts(MoeState<T>& st);
  void backward_experts_input(MoeState<T>& st, const View2<T>& dy_loc, const View2<T>& dx_loc);
  void backward_experts_weight(MoeState<T>& st, const View2<T>& dy_loc);

  MoeConfig cfg_;
  std::int64_t C_, T_, first_, local_;
  std::string prefix_;
  double proj_std_;
  ExpertExchange<T>* exchange_ = nullptr;
  View2<T> wr_, dwr_;
  std::vector<Expert> p_, g_;
  View2<T> d_wide_, d_loc_, d_back_;  ///< backward scratch (one backward at a time)
};

extern template class MoeFeedForward<float>;
extern template class MoeFeedForward<double>;
extern template class MoeFeedForward<bf16>;
extern template class MoeFeedForward<fp16>;

}  // namespace partrain::models
