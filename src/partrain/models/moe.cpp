#include "partrain/models/moe.hpp"

#include <cmath>

#include "partrain/core/error.hpp"
#include "partrain/kernels/activation.hpp"
#include "partrain/kernels/linear.hpp"
#include "partrain/kernels/moe.hpp"

namespace partrain::models {

std::int64_t MoeConfig::capacity(std::int64_t seq_len) const {
  return std::int64_t(std::ceil(capacity_factor * double(top_k) * double(seq_len) / double(experts) - 1e-9));
}

template <class T>
MoeFeedForward<T>::MoeFeedForward(const MoeConfig& cfg, std::int64_t channels, std::int64_t seq_len, std::string prefix,
                                  double proj_std, std::int64_t first, std::int64_t local)
    : cfg_(cfg),
      C_(channels),
      T_(seq_len),
      first_(first),
      local_(local < 0 ? cfg.experts : local),
      prefix_(std::move(prefix)),
      proj_std_(proj_std) {
  PARTRAIN_REQUIRE(first_ >= 0 && first_ + local_ <= cfg_.experts, "expert range out of bounds");
}

template <class T>
void MoeFeedForward<T>::declare(ParamStore<T>& ps) {
  constexpr double kStd = 0.02;
  ps.declare(prefix_ + ".router.weight", {cfg_.experts, C_}, Init::normal(kStd));
  for (std::int64_t e = first_; e < first_ + local_; ++e) {
    const auto n = expert_name(e);
    ps.declare(n + ".fc.weight", {4 * C_, C_}, Init::normal(kStd));
    ps.declare(n + ".fc.bias", {4 * C_}, Init::constant(0.0));
    ps.declare(n + ".proj.weight", {C_, 4 * C_}, Init::normal(proj_std_));
    ps.declare(n + ".proj.bias", {C_}, Init::constant(0.0));
  }
}

template <class T>
void MoeFeedForward<T>::bind(const ParamStore<T>& ps) {
  wr_ = ps.param2(prefix_ + ".router.weight");
  dwr_ = ps.grad2(prefix_ + ".router.weight");
  p_.clear();
  g_.clear();
  for (std::int64_t e = first_; e < first_ + local_; ++e) {
    const auto n = expert_name(e);
    p_.push_back({ps.param2(n + ".fc.weight"), ps.param2(n + ".proj.weight"), ps.flat_param(n + ".fc.bias"),
                  ps.flat_param(n + ".proj.bias")});
    g_.push_back({ps.grad2(n + ".fc.weight"), ps.grad2(n + ".proj.weight"), ps.flat_grad(n + ".fc.bias"),
                  ps.flat_grad(n + ".proj.bias")});
  }
}

template <class T>
std::int64_t MoeFeedForward<T>::max_rows(std::int64_t rows) const {
  // this rank's dispatched rows: at most k per token, and at most cap per sequence and expert
  return std::min(rows * cfg_.top_k, (rows / T_) * cfg_.experts * cfg_.capacity(T_));
}

template <class T>
std::int64_t MoeFeedForward<T>::max_expert_rows(std::int64_t rows) const {
  // the rows this rank's experts compute: its own, or with an exchange at most cap per sequence and local expert from
  // each rank of the group (every rank of a group has as many sequences): S·ep·(E/ep)·cap
  return exchange_ ? (rows / T_) * cfg_.experts * cfg_.capacity(T_) : max_rows(rows);
}

template <class T>
std::unique_ptr<MoeState<T>> MoeFeedForward<T>::make_state(std::int64_t rows) const {
  using A = acc_t<T>;
  const std::int64_t E = cfg_.experts, k = cfg_.top_k, S = rows / T_, R = max_rows(rows), RL = max_expert_rows(rows);
  const std::string a = "act/" + prefix_;
  auto st = std::make_unique<MoeState<T>>();
  st->logits = View2<T>(a + ".logits", rows, E);
  st->dlogits = View2<T>(a + ".dlogits", rows, E);
  st->probs = View2<A>(a + ".probs", rows, E);
  st->gate = View2<A>(a + ".gate", rows, k);
  st->dgate = View2<A>(a + ".dgate", rows, k);
  st->choice = View2<std::int64_t>(a + ".choice", rows, k);
  st->slot = View2<std::int64_t>(a + ".slot", rows, k);
  st->count = View2<std::int64_t>(a + ".count", S, E);
  st->offset = View2<std::int64_t>(a + ".offset", S, E);
  st->frac = View2<A>(a + ".frac", S, E);
  st->aux = View1<A>(a + ".aux", S);
  st->x_disp = View2<T>(a + ".x_disp", R, C_);
  st->y_disp = View2<T>(a + ".y_disp", R, C_);
  if (exchange_) {
    st->x_loc = View2<T>(a + ".x_loc", RL, C_);
    st->y_loc = View2<T>(a + ".y_loc", RL, C_);
  } else {
    st->x_loc = st->x_disp;
    st->y_loc = st->y_disp;
  }
  st->fc = View2<T>(a + ".fc", RL, 4 * C_);
  st->fcg = View2<T>(a + ".fcg", RL, 4 * C_);
  return st;
}

namespace {
/// Rows [begin, begin + n) of v.
template <class T>
View2<T> rows_of(const View2<T>& v, std::int64_t begin, std::int64_t n) {
  return View2<T>(v.data() + begin * std::int64_t(v.extent(1)), n, v.extent(1));
}
}  // namespace

template <class T>
void MoeFeedForward<T>::forward(const View2<T>& h, const View2<T>& y, MoeState<T>& st) {
  using A = acc_t<T>;
  const std::int64_t E = cfg_.experts, S = h.extent(0) / T_;
  kernels::linear_forward(h, wr_, View1<T>(), st.logits);
  kernels::router_softmax(st.logits, st.probs);
  kernels::moe_route(st.probs, T_, cfg_.top_k, cfg_.capacity(T_), A(cfg_.aux_loss_coef), st.choice, st.gate, st.slot,
                     st.count, st.frac, st.aux);
  // Offsets of each (sequence, expert) group among the expert-major rows: expert e's rows sequence by sequence.
  auto count = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), st.count);
  auto offset = Kokkos::create_mirror_view(st.offset);
  st.rows_per_expert.assign(std::size_t(E), 0);
  std::int64_t at = 0;
  for (std::int64_t e = 0; e < E; ++e)
    for (std::int64_t s = 0; s < S; ++s) {
      offset(s, e) = at;
      at += count(s, e);
      st.rows_per_expert[std::size_t(e)] += count(s, e);
    }
  st.rows = at;
  Kokkos::deep_copy(st.offset, offset);
  kernels::moe_place(T_, st.choice, st.offset, st.slot);
  {
    auto aux = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), st.aux);
    st.aux_sum = 0;
    for (std::int64_t s = 0; s < S; ++s) st.aux_sum += double(T_) * double(aux(s));
  }
  const View2<T> x_disp = rows_of(st.x_disp, 0, st.rows);
  kernels::moe_scatter(h, st.slot, View2<A>(), x_disp);
  if (exchange_) {
    exchange_->plan(st.rows_per_expert, st.plan);
    PARTRAIN_REQUIRE(st.plan.received <= std::int64_t(st.x_loc.extent(0)), "an expert rank received more rows than it holds room for");
    exchange_->dispatch(st.plan, x_disp, rows_of(st.x_loc, 0, st.plan.received));
  } else {
    st.plan.local_rows = st.rows_per_expert;
    st.plan.received = st.rows;
  }
  run_experts(st);
  if (exchange_) exchange_->combine(st.plan, rows_of(st.y_loc, 0, st.plan.received), rows_of(st.y_disp, 0, st.rows));
  kernels::moe_gather(rows_of(st.y_disp, 0, st.rows), st.slot, st.gate, y, false);
}

template <class T>
void MoeFeedForward<T>::run_experts(MoeState<T>& st) {
  std::int64_t at = 0;
  for (std::int64_t e = 0; e < local_; ++e) {
    const std::int64_t n = st.plan.local_rows[std::size_t(e)];
    const auto& p = p_[std::size_t(e)];
    auto fc = rows_of(st.fc, at, n), fcg = rows_of(st.fcg, at, n);
    kernels::linear_forward(rows_of(st.x_loc, at, n), p.fc_w, p.fc_b, fc);
    kernels::gelu_forward(kernels::flat(fc), kernels::flat(fcg));
    kernels::linear_forward(fcg, p.proj_w, p.proj_b, rows_of(st.y_loc, at, n));
    at += n;
  }
}

template <class T>
void MoeFeedForward<T>::backward_experts_input(MoeState<T>& st, const View2<T>& dy_loc, const View2<T>& dx_loc) {
  std::int64_t at = 0;  // the output gradient of each expert's fc stays in d_wide_ for its weight gradient
  for (std::int64_t e = 0; e < local_; ++e) {
    const std::int64_t n = st.plan.local_rows[std::size_t(e)];
    const auto& p = p_[std::size_t(e)];
    auto dwide = rows_of(d_wide_, at, n);
    kernels::linear_backward_input(rows_of(dy_loc, at, n), p.proj_w, dwide);
    kernels::gelu_backward(kernels::flat(rows_of(st.fc, at, n)), kernels::flat(dwide), kernels::flat(dwide));
    kernels::linear_backward_input(dwide, p.fc_w, rows_of(dx_loc, at, n));
    at += n;
  }
}

template <class T>
void MoeFeedForward<T>::backward_experts_weight(MoeState<T>& st, const View2<T>& dy_loc) {
  std::int64_t at = 0;
  for (std::int64_t e = 0; e < local_; ++e) {
    const std::int64_t n = st.plan.local_rows[std::size_t(e)];
    const auto& g = g_[std::size_t(e)];
    kernels::linear_backward_weight(rows_of(dy_loc, at, n), rows_of(st.fcg, at, n), g.proj_w, g.proj_b);
    kernels::linear_backward_weight(rows_of(d_wide_, at, n), rows_of(st.x_loc, at, n), g.fc_w, g.fc_b);
    if (exchange_) exchange_->progress();
    at += n;
  }
}

template <class T>
void MoeFeedForward<T>::backward(const View2<T>& h, const View2<T>& dy, const View2<T>& dh, MoeState<T>& st,
                                 double scale) {
  using A = acc_t<T>;
  const std::int64_t R = st.x_disp.extent(0), RL = st.x_loc.extent(0);
  if (std::int64_t(d_wide_.extent(0)) != RL || std::int64_t(d_back_.extent(0)) != R) {
    d_wide_ = View2<T>("act/" + prefix_ + ".scratch.wide", RL, 4 * C_);
    d_loc_ = View2<T>("act/" + prefix_ + ".scratch.loc", RL, C_);
    d_back_ = View2<T>("act/" + prefix_ + ".scratch.back", R, C_);
  }
  const View2<T> y_disp = rows_of(st.y_disp, 0, st.rows);
  kernels::moe_gate_grad(dy, y_disp, st.slot, st.dgate);
  // the outputs' gradients to the experts (into x_disp: the forward's dispatched inputs are not needed again; the
  // experts' own inputs are x_loc)
  const View2<T> d_disp = exchange_ ? rows_of(st.x_disp, 0, st.rows) : rows_of(d_back_, 0, st.rows);
  kernels::moe_scatter(dy, st.slot, st.gate, d_disp);
  const std::int64_t n = st.plan.received;
  const View2<T> dy_loc = exchange_ ? rows_of(st.y_loc, 0, n) : d_disp;  // y_loc is not needed again either
  if (exchange_) exchange_->start_dispatch(st.plan, d_disp);
  // the router's backward needs nothing from the experts: it runs while their output gradients travel
  kernels::moe_router_backward<T>(st.probs, st.choice, st.dgate, st.frac, T_, A(scale * cfg_.aux_loss_coef * double(cfg_.experts)),
                                  st.dlogits);
  kernels::linear_backward(st.dlogits, h, wr_, dh, dwr_, View1<T>());
  if (exchange_) exchange_->finish_dispatch(st.plan, dy_loc);
  const View2<T> dx_loc = rows_of(d_loc_, 0, n);
  backward_experts_input(st, dy_loc, dx_loc);
  const View2<T> dx_disp = exchange_ ? rows_of(d_back_, 0, st.rows) : dx_loc;
  if (exchange_) exchange_->start_combine(st.plan, dx_loc, dx_disp);
  backward_experts_weight(st, dy_loc);  // while the input gradients travel back
  if (exchange_) exchange_->finish_combine();
  kernels::moe_gather(dx_disp, st.slot, View2<A>(), dh, true);
}

template <class T>
double MoeFeedForward<T>::forward_flops(std::int64_t rows) const {
  const double N = double(rows), C = double(C_);
  return 2.0 * N * C * double(cfg_.experts) + double(cfg_.top_k) * 16.0 * N * C * C;
}

template <class T>
double MoeFeedForward<T>::activation_elements(std::int64_t rows) const {
  const double N = double(rows), E = double(cfg_.experts), k = double(cfg_.top_k), R = double(max_rows(rows)),
               RL = double(max_expert_rows(rows)), C = double(C_), S = double(rows / T_);
  const double idx = 8.0 / double(sizeof(T)), acc = double(sizeof(acc_t<T>)) / double(sizeof(T));
  // in elements of T: logits, dlogits, probs; gate, dgate, choice, slot; count, offset, frac; aux; the dispatched
  // rows in and out, the experts' fc and fcg; the backward's scratch (4C + C per expert row, C per dispatched row)
  // (with an exchange the experts' rows x_loc, y_loc are separate and sized for what the group may send)
  const double loc = exchange_ ? 2.0 * RL * C : 0.0;
  return N * E * (2 + acc) + N * k * (2 * acc + 2 * idx) + S * E * (2 * idx + acc) + S * acc + R * C * 2 + loc +
         RL * 8 * C + RL * 5 * C + R * C;
}

template class MoeFeedForward<float>;
template class MoeFeedForward<double>;
template class MoeFeedForward<bf16>;
template class MoeFeedForward<fp16>;

}  // namespace partrain::models
