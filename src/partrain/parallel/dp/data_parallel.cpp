#include "partrain/parallel/dp/data_parallel.hpp"

#include <cstdio>

#include "partrain/core/error.hpp"
#include "partrain/core/fault.hpp"
#include "partrain/core/log.hpp"
#include "partrain/core/timer.hpp"
#include "partrain/kernels/gemm.hpp"
#include "partrain/models/gpt_layers.hpp"
#include "partrain/parallel/tp/gpt.hpp"
#include "partrain/parallel/tp/gpt_layers.hpp"

namespace partrain::parallel {
template <class T>
DataParallelTrainer<T>::DataParallelTrainer(models::Model<T>& model, const models::Dataset<T>& data,
                                            const models::TrainSpec& spec, coll::MpiCommunicator& dp,
                                            const DpOptions& opts, TpContext* tp,
                                            std::optional<std::uint64_t> model_seed, const EpGroups* ep)
    : model_(model),
      data_(data),
      spec_(spec),
      dp_(dp),
      opts_(opts),
      tp_(tp),
      ep_(ep ? *ep : EpGroups{}),
      exchange_(attach_exchange(model, ep)),
      moe_log_(model),
      opt_(spec.optimizer, model.params().numel()),
      mixed_(model.params(), model_seed, spec),
      local_(replica_share(spec, dp, tp).count),
      first_(replica_share(spec, dp, tp).first),
      batch_(data.allocate(local_)),
      ws_(model.make_workspace(local_)),
      reducer_(model, dp, opts, ep ? ep->edp : nullptr) {
  // expert groups route per sequence but size an expert rank's rows for as many sequences on every rank
  PARTRAIN_REQUIRE(!ep || spec.global_batch % dp.size() == 0, "expert parallelism needs equal shares of the batch");
}

template <class T>
std::unique_ptr<AlltoallExchange<T>> DataParallelTrainer<T>::attach_exchange(models::Model<T>& model, const EpGroups* ep) {
  if (!ep) return nullptr;
  const auto* gpt = dynamic_cast<const models::Gpt<T>*>(&model);
  PARTRAIN_REQUIRE(gpt && gpt->config().moe.enabled(), "expert parallelism needs the mixture-of-experts GPT");
  auto ex = std::make_unique<AlltoallExchange<T>>(*ep->ep, gpt->config().moe.experts, gpt->config().channels, ep->algo);
  for (const auto& l : model.layers())
    if (const auto* b = dynamic_cast<const models::GptBlock<T>*>(l.get()); b && b->moe()) b->moe()->set_exchange(ex.get());
  return ex;
}

template <class T>
Share DataParallelTrainer<T>::replica_share(const models::TrainSpec& spec, const coll::MpiCommunicator& dp, const TpContext* tp) {
  const int cp = tp ? tp->cp_size() : 1;  // the group's ranks ordered cp fastest: cp neighbours form a replica
  return share_of(spec.global_batch, dp.size() / cp, dp.rank() / cp);
}

template <class T>
std::vector<ContextAttention<T>*> DataParallelTrainer<T>::context_attentions() const {
  std::vector<ContextAttention<T>*> out;
  for (const auto& l : model_.layers())
    if (const auto* b = dynamic_cast<const TpBlock<T>*>(l.get()); b && b->context_attention())
      out.push_back(b->context_attention());
  return out;
}

template <class T>
std::int64_t DataParallelTrainer<T>::expert_first() const {
  return static_cast<const models::Gpt<T>&>(model_).config().expert_first;
}

template <class T>
StepRecord DataParallelTrainer<T>::step(std::int64_t s, const BeforeUpdate& before_update) {
  data_.fill(std::uint64_t(s), first_, batch_);
  coll::barrier(dp_.comm());
  const double tp0 = tp_ ? tp_->comm_s : 0.0;
  CpContext* cp = tp_ && tp_->cp_size() > 1 ? tp_->cp : nullptr;
  const double cp_wait0 = cp ? cp->wait_s : 0.0, cp_attn0 = cp ? cp->attention_s : 0.0;
  reducer_.begin_step();
  if (exchange_) exchange_->take_time();
  const auto a2a_bytes0 = ep_.ep ? ep_.ep->counters()[coll::Op::Alltoall].bytes_sent : 0;
  const double t0 = fenced_time_s();
  straggle();  // --inject slow: this rank's compute is late
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
  // e.g. sequence-parallel replicated parameters: sum over the tensor-parallel group (on the fp32 copy when the
  // gradients were reduced in fp32: the optimizer reads that one)
  if constexpr (is_half_v<T>) {
    if (reducer_.fp32_grads().size()) model_.finalize_grads_wide(model_.params(), reducer_.fp32_grads());
    else model_.finalize_grads();
  } else {
    model_.finalize_grads();
  }
  const double t_comm = fenced_time_s();
  double global_loss = 0;
  coll::allreduce(&local_loss, &global_loss, 1, MPI_DOUBLE, MPI_SUM, dp_.comm());
  StepRecord rec;
  rec.loss = global_loss / rows;
  if (before_update) before_update(rec.loss);
  const double t_opt0 = fenced_time_s();
  // Every replica holds the same reduced gradients; a tensor-parallel group's ranks hold different shards, so fp16's
  // inf/NaN check is agreed over the group and every rank skips the same steps.
  // With expert parallelism the replicas hold different experts: agreed over the data-parallel group.
  typename models::MixedPrecision<T>::Agree agree;
  MPI_Comm holders = ep_.ep ? dp_.comm() : tp_ && tp_->size() > 1 ? tp_->comm->comm() : MPI_COMM_NULL;
  if (holders != MPI_COMM_NULL)
    agree = [holders](bool mine) {
      int m = mine ? 1 : 0, any = 0;
      coll::allreduce(&m, &any, 1, MPI_INT, MPI_MAX, holders);
      return any > 0;
    };
  const bool applied = reducer_.fp32_grads().size() ? mixed_.step(opt_, model_.params(), reducer_.fp32_grads(), agree)
                                                    : mixed_.step(opt_, model_.params(), model_.params().grads(), agree);
  log_.record(loss_scale, !applied);
  const double t_end = fenced_time_s();
  rec.time_s = (t_comm - t0) + (t_end - t_opt0);
  rec.phase("forward", t_fwd - t0);
  rec.phase("backward", (t_bwd - t_fwd) - in_hooks);
  rec.phase("comm_exposed", reducer_.exposed_s());
  rec.phase("comm", reducer_.span_s());
  rec.phase("optimizer", t_end - t_opt0);
  if (tp_) rec.phase("tp_comm", tp_->comm_s - tp0);
  const double cp_wait = cp ? cp->wait_s - cp_wait0 : 0.0;  // context parallelism's transfers left waiting
  if (cp) {
    rec.phase("cp_comm", cp_wait);
    rec.phase("cp_attention", cp->attention_s - cp_attn0);
  }
  const double a2a = exchange_ ? exchange_->take_time() : 0.0;  // the MoE layers' token exchanges, inside the step
  if (exchange_) rec.phase("alltoall", a2a);
  // forward and backward less what the hooks waited for (the tensor-parallel collectives and the expert exchanges
  // inside them too)
  rec.phase("busy", (t_bwd - t0) - in_hooks - (tp_ ? tp_->comm_s - tp0 : 0.0) - a2a - cp_wait + (t_end - t_opt0));
  moe_log_.record(ws_, local_, dp_.comm(), rows);  // outside the timed step
  ++steps_;
  counters_ = dp_.counters();
  dp_bytes_sent_ = counters_[coll::Op::Allreduce].bytes_sent;
  if (ep_.ep) {
    a2a_bytes_ += ep_.ep->counters()[coll::Op::Alltoall].bytes_sent - a2a_bytes0;
    counters_ += ep_.ep->counters();
    counters_ += ep_.edp->counters();
    dp_bytes_sent_ += ep_.edp->counters()[coll::Op::Allreduce].bytes_sent;
  }
  if (tp_) {
    counters_ += tp_->comm->counters();
    tp_block_bytes_ = tp_->block_bytes_sent;
  }
  if (cp) counters_ += cp->comm->counters();
  return rec;
}

template <class T>
std::string DataParallelTrainer<T>::describe() const {
  const int t = tp_ ? tp_->size() : 1;
  const std::string precision =
      is_half_v<T> ? ", " + precision_name<T>() + " gradients reduced in " +
                         (reducer_.fp32_grads().size() ? std::string("fp32") : precision_name<T>()) +
                         ", fp32 master weights"
                   : "";
  const std::int64_t B = spec_.global_batch, n = dp_.size() / (tp_ ? tp_->cp_size() : 1);
  const std::string samples = B % n == 0 ? std::to_string(B / n)
                                         : std::to_string(B / n) + "-" + std::to_string(B / n + 1) + " (uneven)";
  std::string experts;
  if (exchange_) {
    const auto& m = static_cast<const models::Gpt<T>&>(model_).config().moe;
    experts = " (ep " + std::to_string(ep_.ep->size()) + ": " + std::to_string(m.experts / ep_.ep->size()) + " of " +
              std::to_string(m.experts) + " experts per MoE block here, top-" + std::to_string(m.top_k) +
              ", capacity " + std::to_string(m.capacity(model_.rows_per_sample())) +
              " per sequence and expert, all-to-all " + coll::name(ep_.algo) + ")";
  }
  const int cp = tp_ ? tp_->cp_size() : 1;
  const std::string context =
      cp > 1 ? " x cp " + std::to_string(cp) + " (" + name(tp_->cp->kind) + " attention, " +
                   std::to_string(tp_->cp->layout.local) + " of " + std::to_string(tp_->cp->layout.seq_len) +
                   " tokens per sequence here)"
             : "";
  return "dp " + std::to_string(dp_.size() / cp) + " x tp " + std::to_string(t) +
         (tp_ && tp_->sequence_parallel ? " (sequence parallel)" : "") + context + experts + ": " +
         std::to_string(model_.params().numel()) + " parameters per rank (" +
         format_bytes(double(model_.params().numel() * std::int64_t(sizeof(T)))) + "), " +
         std::to_string(buckets().buckets().size()) + " buckets, algorithm " + coll::name(opts_.algo) +
         (opts_.algo == coll::Algo::Auto ? std::string(" (") + coll::name(reducer_.resolved_algo()) + ")" : "") +
         ", overlap " + (opts_.overlap ? "on" : "off") + ", " + samples + " samples per " +
         (n < dp_.size() ? "replica" : "rank") + precision;
}

template <class T>
std::vector<io::NamedTensor> DataParallelTrainer<T>::gather_full(bool grads) {
  if (!tp_) {
    auto mine = reducer_.fp32_grads().size() ? precision_tensors(mixed_, model_.params(), grads, reducer_.fp32_grads())
                                             : precision_tensors(mixed_, model_.params(), grads, model_.params().grads());
    if (!ep_.ep) return mine;
    return gather_experts(std::move(mine), *ep_.ep, static_cast<const models::Gpt<T>&>(model_).config().moe.experts,
                          expert_first());
  }
  std::vector<io::NamedTensor> out;  // tensor-parallel shards gathered over the group; replicas hold the same
  auto add = [&](auto&& gathered, double factor) {
    for (auto& [info, v] : gathered) {
      for (auto& x : v) x *= factor;
      out.push_back({info.name, info.shape, std::move(v)});
    }
  };
  if constexpr (is_half_v<T>) {  // the master weights, or the gradients divided by the loss scale
    if (!grads) add(gather_full_values(model_.params(), *tp_, mixed_.master()), 1.0);
    else if (reducer_.fp32_grads().size()) add(gather_full_values(model_.params(), *tp_, reducer_.fp32_grads()), 1.0 / mixed_.loss_scale());
    else add(gather_full_values(model_.params(), *tp_, model_.params().grads()), 1.0 / mixed_.loss_scale());
  } else {
    add(parallel::gather_full(model_.params(), *tp_, grads), 1.0);
  }
  return out;
}

template <class T>
double DataParallelTrainer<T>::measure_pure_comm(int reps) {
  pure_s_ = reducer_.measure_pure_comm(reps);
  const auto attns = context_attentions();
  if (!attns.empty()) {  // one step's context-parallel transfers alone: every layer's, best of the repetitions
    cp_pure_s_ = 0;
    for (int r = 0; r < std::max(1, reps); ++r) {
      double t = 0;
      for (auto* a : attns) t += a->replay_transfers(local_);
      cp_pure_s_ = r == 0 ? t : std::min(cp_pure_s_, t);
    }
  }
  return pure_s_;
}

template <class T>
std::vector<std::pair<std::string, bool>> DataParallelTrainer<T>::self_check() {
  // Replicas bit-identical: a position-weighted checksum of the parameters is equal on every rank of the group (an
  // expert's on the ranks holding it).
  auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model_.params().params());
  double checksum = 0, experts = 0;
  for (const auto& p : model_.params().infos())
    for (std::int64_t i = p.offset; i < p.offset + p.size; ++i)
      (ep_.ep && models::is_expert_parameter(p.name) ? experts : checksum) += double(hp.data()[i]) * double(i % 13 + 1);
  const auto cs = coll::over_ranks(dp_.comm(), checksum);
  if (!ep_.ep) return {{"replicas identical", cs[0] == cs[2]}};
  const auto ex = coll::over_ranks(ep_.edp->comm(), experts);
  return {{"replicas identical", cs[0] == cs[2]}, {"expert replicas identical", ex[0] == ex[2]}};
}

template <class T>
std::vector<std::string> DataParallelTrainer<T>::exposed_comm_phases() const {
  std::vector<std::string> p = {"comm_exposed"};
  if (tp_) p.push_back("tp_comm");
  if (tp_ && tp_->cp_size() > 1) p.push_back("cp_comm");
  if (exchange_) p.push_back("alltoall");
  return p;
}

template <class T>
std::string DataParallelTrainer<T>::step_note(const StepRecord& rec) const {
  auto ph = [&](const char* n) {
    for (const auto& [k, v] : rec.phases)
      if (k == n) return v;
    return 0.0;
  };
  char buf[160];
  if (tp_ && tp_->cp_size() > 1)
    std::snprintf(buf, sizeof buf, "attention %4.1f%% | cp exposed %4.1f%% | tp comm %4.1f%% | dp exposed %4.1f%%",
                  100.0 * ph("cp_attention") / rec.time_s, 100.0 * ph("cp_comm") / rec.time_s,
                  100.0 * ph("tp_comm") / rec.time_s, 100.0 * ph("comm_exposed") / rec.time_s);
  else if (tp_)
    std::snprintf(buf, sizeof buf, "tp comm %4.1f%% | dp exposed %4.1f%%", 100.0 * ph("tp_comm") / rec.time_s,
                  100.0 * ph("comm_exposed") / rec.time_s);
  else if (exchange_)
    std::snprintf(buf, sizeof buf, "all-to-all %4.1f%% | dp exposed %4.1f%%", 100.0 * ph("alltoall") / rec.time_s,
                  100.0 * ph("comm_exposed") / rec.time_s);
  else
    std::snprintf(buf, sizeof buf, "exposed comm %4.1f%%", 100.0 * ph("comm_exposed") / rec.time_s);
  const std::string scale = log_.step_note();
  return scale.empty() ? std::string(buf) : std::string(buf) + " | " + scale;
}

template <class T>
NamedFigures DataParallelTrainer<T>::summary(const RunMedians& m) {
  const auto pure = coll::over_ranks(dp_.comm(), pure_s_);
  const double exposed = m.phase("comm_exposed");
  NamedFigures f = {
      {"comm_pure_s", pure[1]},
      {"comm_exposed_s", exposed},
      {"overlap_pct", pure[1] > 0 ? std::clamp(100.0 * (1.0 - exposed / pure[1]), 0.0, 100.0) : 0.0},
      {"buckets", double(buckets().buckets().size())},
      {"allreduce_bytes_sent_per_step",
       steps_ ? double(dp_bytes_sent_) / double(steps_) : 0.0},
      {"predicted_allreduce_bytes_sent_per_step", double(reducer_.predicted_bytes_per_step())}};
  for (const auto& x : log_.summary(mixed_)) f.push_back(x);
  for (const auto& x : moe_log_.summary(ep_.ep ? ep_.ep->size() : 1, spec_.global_batch)) f.push_back(x);
  if (exchange_) {
    f.push_back({"alltoall_s", m.phase("alltoall")});
    f.push_back({"alltoall_share", m.step_time_s > 0 ? m.phase("alltoall") / m.step_time_s : 0.0});
    f.push_back({"alltoall_bytes_sent_per_step", steps_ ? double(a2a_bytes_) / double(steps_) : 0.0});
  }
  if (tp_) {
    const auto* gpt = dynamic_cast<const TpGpt<T>*>(&model_);
    const double layers = gpt ? double(gpt->config().layers) : 1.0;
    const int cp = tp_->cp_size();
    const double b = double(local_), sq = gpt ? double(gpt->config().seq_len / cp) : 1.0,
                 h = gpt ? double(gpt->config().channels) : 1.0, t = double(tp_->size());
    f.push_back({"tp_comm_s", m.phase("tp_comm")});
    f.push_back({"tp_comm_share", m.phase("tp_comm") / m.step_time_s});
    f.push_back({"tp_block_bytes_sent_per_layer_per_microbatch",
                 steps_ ? double(tp_block_bytes_) / double(steps_) / layers : 0.0});
    f.push_back({"predicted_tp_block_bytes_sent_per_layer_per_microbatch", 8.0 * b * sq * h * (t - 1) / t * double(sizeof(T))});
    if (cp > 1) {  // context parallelism (docs/cp.md, Result figures)
      const auto cp_pure = coll::over_ranks(dp_.comm(), cp_pure_s_);
      const double cp_exposed = m.phase("cp_comm");
      f.push_back({"cp_attention_s", m.phase("cp_attention")});
      f.push_back({"cp_attention_share", m.phase("cp_attention") / m.step_time_s});
      f.push_back({"cp_comm_exposed_s", cp_exposed});
      f.push_back({"cp_comm_pure_s", cp_pure[1]});
      f.push_back({"cp_exposed_share", cp_pure[1] > 0 ? std::min(1.0, cp_exposed / cp_pure[1]) : 0.0});
      f.push_back({"cp_bytes_sent_per_layer_per_microbatch",
                   steps_ ? double(tp_->cp->bytes_sent) / double(steps_) / layers : 0.0});
      f.push_back({"predicted_cp_bytes_sent_per_layer_per_microbatch",
                   cp_bytes_per_layer(tp_->cp->kind, cp, b, sq, h / t, double(sizeof(T)))});
    }
  }
  return f;
}

template <class T>
NamedStrings DataParallelTrainer<T>::attributes() const {
  NamedStrings a = {{"algorithm", coll::name(opts_.algo)},
                    {"algorithm_resolved", coll::name(reducer_.resolved_algo())},
                    {"overlap", opts_.overlap ? "true" : "false"}};
  if constexpr (is_half_v<T>) {
    a.push_back({"half_gemm", kernels::half_gemm_kernel(precision_name<T>())});
    a.push_back({"grad_reduce_dtype", reducer_.fp32_grads().size() ? "fp32" : precision_name<T>()});
  }
  if (exchange_) a.push_back({"alltoall_algorithm", coll::name(ep_.algo)});
  if (tp_ && tp_->cp_size() > 1) a.push_back({"cp_kind", name(tp_->cp->kind)});
  return a;
}

template <class T>
std::array<double, 3> DataParallelTrainer<T>::predicted_state_bytes() const {
  return model_state_bytes<T>(model_.params().numel(), double(opt_.state_bytes()),
                              double(reducer_.fp32_grads().size()) * 4.0);
}

template <class T>
std::vector<io::TensorPart> DataParallelTrainer<T>::state_parts(bool writer) {
  if (!state_) {
    // Without tensor parallelism the replicas share the writing (a slice of the flat buffer each); with it, the
    // first replica writes its group's shards, and the group's first rank the tensors every rank of it holds.
    // With expert parallelism rank 0 writes the shared tensors and the first expert group the experts (each its own).
    state_ = std::make_unique<StateIo<master_t<T>>>();
    const auto& ps = model_.params();
    const bool first_replica = dp_.rank() == 0, first_of_group = !tp_ || tp_->rank() == 0;
    const bool first_holder = ep_.edp && ep_.edp->rank() == 0;
    auto add = [&](const std::string& g, const auto& values) {
      if (ep_.ep)
        state_->add(g, ps, values, true, 0, 1, [first_replica, first_holder](const std::string& name) {
          return models::is_expert_parameter(name) ? first_holder : first_replica;
        });
      else if (!tp_) state_->add(g, ps, values, true, dp_.rank(), dp_.size());
      else
        state_->add(g, ps, values, first_replica, 0, 1, [&ps, first_of_group](const std::string& name) {
          return ps.info(name).shard.sharded() || first_of_group;
        });
    };
    add("params", checkpoint_params(mixed_, ps));
    if (opt_.m().size()) add("optim/m", opt_.m());
    if (opt_.v().size()) add("optim/v", opt_.v());
  }
  return state_->parts(writer);
}

template <class T>
void DataParallelTrainer<T>::restore_state(const std::vector<io::TensorPart>& parts, std::int64_t steps) {
  state_parts(false);
  state_->restore(parts);
  mixed_.refresh_params(model_.params());
  opt_.set_steps(steps);
}

template <class T>
NamedFigures DataParallelTrainer<T>::checkpoint_numbers() const {
  return scaler_numbers(mixed_);
}

template <class T>
void DataParallelTrainer<T>::restore_numbers(const std::map<std::string, double>& numbers) {
  restore_scaler(mixed_, numbers);
}

template <class T>
std::vector<io::ExtraDataset> DataParallelTrainer<T>::datasets() {
  auto d = log_.datasets();
  for (auto& x : moe_log_.datasets()) d.push_back(std::move(x));
  return d;
}

template class DataParallelTrainer<float>;
template class DataParallelTrainer<double>;
template class DataParallelTrainer<bf16>;
template class DataParallelTrainer<fp16>;

}  // namespace partrain::parallel
