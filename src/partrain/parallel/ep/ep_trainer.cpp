#include "partrain/parallel/ep/ep_trainer.hpp"

#include <algorithm>
#include <cstdio>

#include "partrain/core/error.hpp"
#include "partrain/core/fault.hpp"
#include "partrain/core/log.hpp"
#include "partrain/core/timer.hpp"
#include "partrain/kernels/gemm.hpp"

namespace partrain::parallel {

namespace {
bool is_expert(const std::string& name) { return models::is_expert_parameter(name); }
}  // namespace

template <class T>
EpTrainer<T>::EpTrainer(models::Gpt<T>& model, const models::Dataset<T>& data, const models::TrainSpec& spec,
                        coll::MpiCommunicator& world, coll::MpiCommunicator& ep, coll::MpiCommunicator& edp,
                        const EpOptions& opts, std::uint64_t model_seed)
    : model_(model),
      data_(data),
      spec_(spec),
      world_(world),
      ep_(ep),
      edp_(edp),
      opts_(opts),
      opt_(spec.optimizer, model.params().numel()),
      mixed_(model.params(), model_seed, spec),
      exchange_(ep, model.config().moe.experts, model.config().channels, opts.a2a_algo),
      local_(spec.global_batch / world.size()),
      first_(local_ * world.rank()),
      batch_(data.allocate(local_)),
      reducer_(model, world, opts.dp, &edp) {
  PARTRAIN_REQUIRE(spec.global_batch % world.size() == 0, "global batch must divide by the ranks");
  const auto& layers = model.layers();
  for (std::size_t i = 0; i < layers.size(); ++i)
    if (const auto* b = dynamic_cast<const models::GptBlock<T>*>(layers[i].get()); b && b->moe()) {
      b->moe()->set_exchange(&exchange_);
      moe_blocks_.push_back(b);
      moe_layers_.push_back(i);
    }
  ws_ = model.make_workspace(local_);  // after the exchange is set: the MoE states hold the experts' own rows
  for (const auto& p : model.params().infos())
    if (is_expert(p.name)) expert_params_ += p.size;
}

template <class T>
StepRecord EpTrainer<T>::step(std::int64_t s, const BeforeUpdate& before_update) {
  data_.fill(std::uint64_t(s), first_, batch_);
  coll::barrier(world_.comm());
  exchange_.take_time();
  const auto a2a_bytes0 = ep_.counters()[coll::Op::Alltoall].bytes_sent;
  reducer_.begin_step();
  const double t0 = fenced_time_s();
  straggle();
  double t_fwd = t0;
  model_.params().zero_grad();
  typename models::Model<T>::Hooks hooks;
  hooks.forward_done = [&] { t_fwd = fenced_time_s(); };
  hooks.backward_done = [&](std::size_t layer) { reducer_.backward_done(layer); };
  const double rows = double(spec_.global_batch * model_.rows_per_sample());
  const double loss_scale = mixed_.loss_scale();
  const double local_loss = model_.forward_backward(batch_, ws_, loss_scale / rows, hooks);
  const double t_bwd = fenced_time_s();
  const double in_hooks = reducer_.exposed_s();
  reducer_.finish();
  const double t_comm = fenced_time_s();
  const double a2a = exchange_.take_time();
  double global_loss = 0;
  coll::allreduce(&local_loss, &global_loss, 1, MPI_DOUBLE, MPI_SUM, world_.comm());
  StepRecord rec;
  rec.loss = global_loss / rows;
  if (before_update) before_update(rec.loss);
  const double t_opt0 = fenced_time_s();
  // ranks hold different experts: fp16's inf/NaN check is agreed over every rank, so all skip the same steps
  typename models::MixedPrecision<T>::Agree agree = [this](bool mine) {
    int m = mine ? 1 : 0, any = 0;
    coll::allreduce(&m, &any, 1, MPI_INT, MPI_MAX, world_.comm());
    return any > 0;
  };
  const bool applied = mixed_.step(opt_, model_.params(), model_.params().grads(), agree);
  log_.record(loss_scale, !applied);
  const double t_end = fenced_time_s();
  rec.time_s = (t_comm - t0) + (t_end - t_opt0);
  rec.phase("forward", t_fwd - t0);
  rec.phase("backward", (t_bwd - t_fwd) - in_hooks);
  rec.phase("alltoall", a2a);
  rec.phase("comm_exposed", reducer_.exposed_s());
  rec.phase("comm", reducer_.span_s());
  rec.phase("optimizer", t_end - t_opt0);
  rec.phase("busy", (t_bwd - t0) - in_hooks - a2a + (t_end - t_opt0));
  // the routing over all ranks (outside the timed step): kept rows per expert, dropped choices, the auxiliary loss
  const std::int64_t E = model_.config().moe.experts, k = model_.config().moe.top_k;
  const std::size_t nb = moe_blocks_.size();
  std::vector<double> mine(nb * std::size_t(E) + 2, 0.0), all(mine.size(), 0.0);
  const double choices = double(local_ * model_.rows_per_sample() * k);
  for (std::size_t b = 0; b < nb; ++b) {
    const auto* st = moe_blocks_[b]->moe_state(*ws_.states[moe_layers_[b]]);
    for (std::int64_t e = 0; e < E; ++e) mine[b * std::size_t(E) + std::size_t(e)] = double(st->rows_per_expert[std::size_t(e)]);
    mine[nb * std::size_t(E)] += choices - double(st->rows);
    mine[nb * std::size_t(E) + 1] += st->aux_sum;
  }
  coll::allreduce(mine.data(), all.data(), int(mine.size()), MPI_DOUBLE, MPI_SUM, world_.comm());
  tokens_.insert(tokens_.end(), all.begin(), all.begin() + std::ptrdiff_t(nb * std::size_t(E)));
  dropped_.push_back(all[nb * std::size_t(E)]);
  aux_.push_back(all[nb * std::size_t(E) + 1] / rows);
  ++steps_;
  a2a_bytes_ += ep_.counters()[coll::Op::Alltoall].bytes_sent - a2a_bytes0;
  counters_ = world_.counters();
  counters_ += ep_.counters();
  counters_ += edp_.counters();
  return rec;
}

template <class T>
std::string EpTrainer<T>::describe() const {
  const auto& m = model_.config().moe;
  return "ep " + std::to_string(ep_.size()) + " x dp " + std::to_string(world_.size()) + ": " +
         std::to_string(m.experts / ep_.size()) + " of " + std::to_string(m.experts) + " experts per MoE block here (" +
         std::to_string(moe_blocks_.size()) + " MoE blocks, top-" + std::to_string(m.top_k) + ", capacity " +
         std::to_string(m.capacity(model_.config().seq_len)) + " per sequence and expert), " +
         std::to_string(model_.params().numel()) + " parameters per rank (" + std::to_string(expert_params_) +
         " of experts), " + std::to_string(local_) + " samples per rank, all-to-all " + coll::name(opts_.a2a_algo) +
         ", gradient allreduce " + coll::name(opts_.dp.algo) +
         (opts_.dp.algo == coll::Algo::Auto ? std::string(" (") + coll::name(reducer_.resolved_algo()) + ")" : "") +
         ", " + std::to_string(reducer_.buckets().buckets().size()) + " buckets, overlap " + (opts_.dp.overlap ? "on" : "off") +
         (is_half_v<T> ? ", " + precision_name<T>() + " with fp32 master weights" : "");
}

template <class T>
std::vector<io::NamedTensor> EpTrainer<T>::gather_full(bool grads) {
  return gather_experts(precision_tensors(mixed_, model_.params(), grads, model_.params().grads()), ep_,
                        model_.config().moe.experts, model_.config().expert_first);
}

template <class T>
double EpTrainer<T>::measure_pure_comm(int reps) {
  pure_s_ = reducer_.measure_pure_comm(reps);
  return pure_s_;
}

template <class T>
std::vector<std::pair<std::string, bool>> EpTrainer<T>::self_check() {
  // Replicas bit-identical: the shared parameters on every rank, an expert's on every rank holding it.
  auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model_.params().params());
  double shared = 0, expert = 0;
  for (const auto& p : model_.params().infos())
    for (std::int64_t i = 0; i < p.size; ++i)
      (is_expert(p.name) ? expert : shared) += double(hp.data()[p.offset + i]) * double((p.offset + i) % 13 + 1);
  const auto a = coll::over_ranks(world_.comm(), shared), b = coll::over_ranks(edp_.comm(), expert);
  return {{"replicas identical", a[0] == a[2]}, {"expert replicas identical", b[0] == b[2]}};
}

template <class T>
std::string EpTrainer<T>::step_note(const StepRecord& rec) const {
  auto ph = [&](const char* n) {
    for (const auto& [k, v] : rec.phases)
      if (k == n) return v;
    return 0.0;
  };
  char buf[160];
  std::snprintf(buf, sizeof buf, "all-to-all %4.1f%% | dp exposed %4.1f%%", 100.0 * ph("alltoall") / rec.time_s,
                100.0 * ph("comm_exposed") / rec.time_s);
  const std::string scale = log_.step_note();
  return scale.empty() ? std::string(buf) : std::string(buf) + " | " + scale;
}

template <class T>
NamedFigures EpTrainer<T>::summary(const RunMedians& m) {
  const std::int64_t E = model_.config().moe.experts;
  const std::size_t nb = moe_blocks_.size();
  // load imbalance: the busiest expert's rows over the mean, and the busiest expert RANK's (what the all-to-all
  // makes every rank wait for), averaged over steps and MoE blocks
  double imb = 0, rank_imb = 0, dropped = 0;
  const std::int64_t El = E / ep_.size();
  for (std::int64_t s = 0; s < steps_; ++s)
    for (std::size_t b = 0; b < nb; ++b) {
      const double* t = tokens_.data() + (std::size_t(s) * nb + b) * std::size_t(E);
      double sum = 0, mx = 0, rmx = 0;
      for (std::int64_t e = 0; e < E; ++e) sum += t[e], mx = std::max(mx, t[e]);
      for (std::int64_t r = 0; r < ep_.size(); ++r) {
        double x = 0;
        for (std::int64_t e = 0; e < El; ++e) x += t[r * El + e];
        rmx = std::max(rmx, x);
      }
      if (sum > 0) {
        imb += mx / (sum / double(E));
        rank_imb += rmx / (sum / double(ep_.size()));
      }
    }
  const double n = double(std::max<std::int64_t>(1, steps_ * std::int64_t(nb)));
  for (double d : dropped_) dropped += d;
  const double choices = double(spec_.global_batch * model_.rows_per_sample() * model_.config().moe.top_k) *
                         double(nb) * double(std::max<std::int64_t>(1, steps_));
  const auto pure = coll::over_ranks(world_.comm(), pure_s_);
  NamedFigures f = {{"alltoall_s", m.phase("alltoall")},
                    {"comm_pure_s", pure[1]},
                    {"alltoall_share", m.step_time_s > 0 ? m.phase("alltoall") / m.step_time_s : 0.0},
                    {"comm_exposed_s", m.phase("comm_exposed")},
                    {"alltoall_bytes_sent_per_step", steps_ ? double(a2a_bytes_) / double(steps_) : 0.0},
                    {"expert_load_imbalance", imb / n},
                    {"expert_rank_load_imbalance", rank_imb / n},
                    {"dropped_fraction", dropped / choices},
                    {"aux_loss_last", aux_.empty() ? 0.0 : aux_.back()}};
  for (const auto& x : log_.summary(mixed_)) f.push_back(x);
  return f;
}

template <class T>
std::vector<io::ExtraDataset> EpTrainer<T>::datasets() {
  auto d = log_.datasets();
  const hsize_t steps = hsize_t(steps_), nb = hsize_t(moe_blocks_.size()), E = hsize_t(model_.config().moe.experts);
  d.push_back({"/moe/tokens_per_expert", {steps, nb, E}, tokens_,
               {"1", "rows each expert computed per step and MoE block, over the global batch (kept choices)"}});
  d.push_back({"/moe/dropped", {steps}, dropped_,
               {"1", "choices dropped at the capacity per step, over the global batch and every MoE block"}});
  d.push_back({"/moe/aux_loss", {steps}, aux_, {"nats", "the load-balancing loss per step (included in the loss)"}});
  return d;
}

template <class T>
NamedStrings EpTrainer<T>::attributes() const {
  NamedStrings a = {{"alltoall_algorithm", coll::name(opts_.a2a_algo)},
                    {"algorithm", coll::name(opts_.dp.algo)},
                    {"algorithm_resolved", coll::name(reducer_.resolved_algo())},
                    {"overlap", opts_.dp.overlap ? "true" : "false"}};
  if constexpr (is_half_v<T>) a.push_back({"half_gemm", kernels::half_gemm_kernel(precision_name<T>())});
  return a;
}

template <class T>
std::array<double, 3> EpTrainer<T>::predicted_state_bytes() const {
  return model_state_bytes<T>(model_.params().numel(), double(opt_.state_bytes()));
}

template <class T>
std::vector<io::TensorPart> EpTrainer<T>::state_parts(bool writer) {
  if (!state_) {
    // rank 0 writes the shared tensors, the first expert group the experts (each rank its own)
    state_ = std::make_unique<StateIo<master_t<T>>>();
    const auto& ps = model_.params();
    const bool first_rank = world_.rank() == 0, first_group = edp_.rank() == 0;
    auto add = [&](const std::string& g, const auto& values) {
      state_->add(g, ps, values, true, 0, 1, [first_rank, first_group](const std::string& name) {
        return is_expert(name) ? first_group : first_rank;
      });
    };
    add("params", checkpoint_params(mixed_, ps));
    if (opt_.m().size()) add("optim/m", opt_.m());
    if (opt_.v().size()) add("optim/v", opt_.v());
  }
  return state_->parts(writer);
}

template <class T>
void EpTrainer<T>::restore_state(const std::vector<io::TensorPart>& parts, std::int64_t steps) {
  state_parts(false);
  state_->restore(parts);
  mixed_.refresh_params(model_.params());
  opt_.set_steps(steps);
}

template class EpTrainer<float>;
template class EpTrainer<double>;
template class EpTrainer<bf16>;
template class EpTrainer<fp16>;

}  // namespace partrain::parallel
