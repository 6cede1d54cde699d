#include "partrain/parallel/nmt/nmt_trainer.hpp"

#include <cstdio>

#include "partrain/core/error.hpp"
#include "partrain/core/fault.hpp"
#include "partrain/core/log.hpp"
#include "partrain/core/timer.hpp"
#include "partrain/io/result_writer.hpp"
#include "partrain/parallel/nmt/wavefront.hpp"

namespace partrain::parallel::nmt {

template <class T>
NmtTrainer<T>::NmtTrainer(const models::NmtConfig& cfg, std::uint64_t seed, const models::Dataset<T>& data,
                          const models::TrainSpec& spec, coll::MpiCommunicator& world, const NmtOptions& opt)
    : cfg_(cfg), data_(data), spec_(spec), world_(world), opt_(opt), pl_(cfg, opt.model_parallel) {
  const int k = opt.model_parallel;
  replica_ = world.rank() / k;
  mp_rank_ = world.rank() % k;
  mp_ = world.split(replica_, mp_rank_);
  rep_ = world.split(mp_rank_, replica_);
  stage_ = std::make_unique<NmtStage<T>>(cfg, pl_, mp_rank_);
  stage_->build(seed);
  if (opt.replicas > 1) reducer_ = std::make_unique<GradientReducer<T>>(*stage_, *rep_, opt.dp);  // before binding: shm moves the gradients
  local_ = spec.global_batch / opt.replicas;
  exec_ = std::make_unique<NmtExecutor<T>>(cfg, pl_, *mp_, *stage_, local_, opt.time_chunk);
  opt_state_ = std::make_unique<models::Optimizer<master_t<T>>>(spec.optimizer, stage_->params().numel());
  mixed_ = std::make_unique<models::MixedPrecision<T>>(stage_->params(), seed, spec);
  batch_ = data.allocate(local_);
  model_idle_share_ = wavefront_model(cfg, pl_, local_, opt.time_chunk).idle_share(mp_rank_);
}

template <class T>
NmtTrainer<T>::~NmtTrainer() = default;

template <class T>
StepRecord NmtTrainer<T>::step(std::int64_t s, const BeforeUpdate& before_update) {
  data_.fill(std::uint64_t(s), std::int64_t(replica_) * local_, batch_);
  const double rows = double(data_.loss_rows(std::uint64_t(s), 0, spec_.global_batch));
  coll::barrier(world_.comm());
  const double t0 = fenced_time_s();
  straggle();  // --inject slow: this rank's compute is late
  const double slept = fenced_time_s() - t0;
  stage_->params().zero_grad();
  StepTimes t;
  const double loss_scale = mixed_->loss_scale();
  const double local_sum = exec_->step(batch_, loss_scale / rows, true, t);
  t.forward_s += slept;
  t.compute_s += slept;
  const double t1 = fenced_time_s();
  double rep_comm = 0;
  if (reducer_) {
    reducer_->begin_step();
    for (std::size_t l = stage_->layers().size(); l-- > 0;) reducer_->backward_done(l);
    reducer_->finish();
    rep_comm = fenced_time_s() - t1;
  }
  double total = local_sum;
  if (opt_.replicas > 1) coll::allreduce(&local_sum, &total, 1, MPI_DOUBLE, MPI_SUM, rep_->comm());
  StepRecord rec;
  rec.loss = total / rows;
  if (before_update) before_update(rec.loss);
  const double o0 = fenced_time_s();
  // The replicas hold the same reduced gradients; a replica's model-parallel ranks hold different parameters, so
  // fp16's inf/NaN check is agreed over the group and every rank skips the same steps.
  typename models::MixedPrecision<T>::Agree agree;
  if (opt_.model_parallel > 1)
    agree = [this](bool mine) {
      int m = mine ? 1 : 0, any = 0;
      coll::allreduce(&m, &any, 1, MPI_INT, MPI_MAX, mp_->comm());
      return any > 0;
    };
  log_.record(loss_scale, !mixed_->step(*opt_state_, stage_->params(), stage_->params().grads(), agree));
  const double o1 = fenced_time_s();
  rec.time_s = (o0 - t0) + (o1 - o0);
  rec.phase("forward", t.forward_s);
  rec.phase("backward", t.backward_s);
  rec.phase("compute", t.compute_s);
  rec.phase("idle", t.idle_forward_s + t.idle_backward_s);
  rec.phase("group_comm", t.group_comm_s);
  rec.phase("replica_comm", rep_comm);
  rec.phase("optimizer", o1 - o0);
  rec.phase("busy", t.compute_s + (o1 - o0));
  idle_f_.push_back(t.idle_forward_s);
  idle_b_.push_back(t.idle_backward_s);
  fwd_.push_back(t.forward_s);
  bwd_.push_back(t.backward_s);
  compute_.push_back(t.compute_s);
  return rec;
}

template <class T>
std::string NmtTrainer<T>::describe() const {
  return "nmt " + std::to_string(opt_.replicas) + " replica" + (opt_.replicas > 1 ? "s" : "") + " x " +
         std::to_string(opt_.model_parallel) + " model-parallel rank" + (opt_.model_parallel > 1 ? "s" : "") +
         " (update sync, " + std::to_string(exec_->chunks()) + " chunks of " + std::to_string(opt_.time_chunk) +
         " steps; " + pl_.describe() + "), " + std::to_string(stage_->params().numel()) + " parameters on this rank, " +
         std::to_string(local_) + " sentences per replica" +
         (is_half_v<T> ? ", " + precision_name<T>() + " compute, fp32 master weights" : std::string());
}

template <class T>
std::vector<io::NamedTensor> NmtTrainer<T>::gather_full(bool grads) {
  // Replica 0's ranks hold every tensor (sharded ones by rows): each sends (tensor index, row offset, values).
  models::Nmt<double> ref(cfg_);  // names, shapes and order of the reference's tensors (nothing allocated)
  ref.build(0, false, false);
  const auto& infos = ref.params().infos();
  // A 16-bit run's parameters are its fp32 master weights, its gradients divided by the loss scale.
  std::vector<double> host(std::size_t(stage_->params().numel()));
  {
    const double inv = grads ? 1.0 / mixed_->loss_scale() : 1.0;
    auto copy = [&](const auto& view) {
      auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), view);
      for (std::size_t i = 0; i < host.size(); ++i) host[i] = double(h.data()[i]) * inv;
    };
    if (grads) copy(stage_->params().grads());
    else if constexpr (is_half_v<T>) copy(mixed_->master());
    else copy(stage_->params().params());
  }
  std::vector<double> mine;
  if (replica_ == 0)
    for (const auto& p : stage_->params().infos()) {
      std::size_t idx = 0;
      while (idx < infos.size() && infos[idx].name != p.name) ++idx;
      PARTRAIN_REQUIRE(idx < infos.size(), "a stage parameter the reference does not have: " + p.name);
      const std::int64_t cols = p.shape.size() > 1 ? p.shape[1] : 1;
      const std::int64_t row0 = p.shard.sharded() ? std::int64_t(p.shard.index) * p.shape[0] : 0;
      mine.push_back(double(idx));
      mine.push_back(double(row0 * cols));
      mine.push_back(double(p.size));
      for (std::int64_t i = 0; i < p.size; ++i) mine.push_back(host[std::size_t(p.offset + i)]);
    }
  int count = int(mine.size());
  std::vector<int> counts(std::size_t(world_.size()));
  MPI_Gather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, world_.comm());
  std::vector<int> displs(counts.size(), 0);
  for (std::size_t r = 1; r < counts.size(); ++r) displs[r] = displs[r - 1] + counts[r - 1];
  std::vector<double> all(world_.rank() == 0 ? std::size_t(displs.back() + counts.back()) : 0);
  MPI_Gatherv(mine.data(), count, MPI_DOUBLE, all.data(), counts.data(), displs.data(), MPI_DOUBLE, 0, world_.comm());
  std::vector<io::NamedTensor> out;
  if (world_.rank() != 0) return out;
  for (const auto& p : infos) out.push_back({p.name, p.shape, std::vector<double>(std::size_t(p.size), 0.0)});
  for (std::size_t i = 0; i < all.size();) {
    const auto idx = std::size_t(all[i]), at = std::size_t(all[i + 1]), n = std::size_t(all[i + 2]);
    std::copy(all.begin() + std::ptrdiff_t(i + 3), all.begin() + std::ptrdiff_t(i + 3 + n), out[idx].values.begin() + std::ptrdiff_t(at));
    i += 3 + n;
  }
  return out;
}

template <class T>
std::vector<std::pair<std::string, bool>> NmtTrainer<T>::self_check() {
  // Replicas hold the same parameters (the sync update): a checksum equal over each replica group.
  auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), stage_->params().params());
  double cs = 0;
  for (std::size_t i = 0; i < hp.size(); ++i) cs += double(hp.data()[i]) * double(i % 13 + 1);
  const auto r = coll::over_ranks(rep_->comm(), cs);
  int ok = r[0] == r[2] ? 1 : 0, all = 0;
  coll::allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, world_.comm());
  return {{"replicas identical", all == 1}};
}

template <class T>
coll::Counters NmtTrainer<T>::counters() const {
  coll::Counters c = mp_->counters();
  const auto r = rep_->counters();
  c += r;
  return c;
}

template <class T>
std::string NmtTrainer<T>::step_note(const StepRecord& rec) const {
  double idle = 0;
  for (const auto& [k, v] : rec.phases)
    if (k == "idle") idle = v;
  char buf[64];
  std::snprintf(buf, sizeof buf, "idle %4.1f%%", rec.time_s > 0 ? 100.0 * idle / rec.time_s : 0.0);
  const std::string scale = log_.step_note();
  return scale.empty() ? std::string(buf) : std::string(buf) + " | " + scale;
}

template <class T>
NamedFigures NmtTrainer<T>::summary(const RunMedians& m) {
  const std::int64_t w = std::min<std::int64_t>(spec_.warmup, std::int64_t(fwd_.size()) - 1);
  auto med = [&](const std::vector<double>& v) { return io::median(std::vector<double>(v.begin() + w, v.end())); };
  const double idle = med(idle_f_) + med(idle_b_), span = med(fwd_) + med(bwd_);
  const double share = span > 0 ? idle / span : 0.0;
  rank_idle_share_.assign(std::size_t(world_.size()), 0.0);
  std::vector<double> mine(std::size_t(world_.size()), 0.0);
  mine[std::size_t(world_.rank())] = share;
  coll::allreduce(mine.data(), rank_idle_share_.data(), world_.size(), MPI_DOUBLE, MPI_SUM, world_.comm());
  const auto over = coll::over_ranks(world_.comm(), share);
  const auto model = coll::over_ranks(world_.comm(), model_idle_share_);
  NamedFigures f = {{"idle_share_median", over[1]},
          {"idle_share_max", over[2]},
          {"predicted_idle_share_median", model[1]},
          {"predicted_idle_share_max", model[2]},
          {"idle_s", m.phase("idle")},
          {"group_comm_s", m.phase("group_comm")},
          {"replica_comm_s", m.phase("replica_comm")},
          {"model_parallel", double(opt_.model_parallel)},
          {"replicas", double(opt_.replicas)},
          {"time_chunks", double(exec_->chunks())}};
  for (const auto& x : log_.summary(*mixed_)) f.push_back(x);
  return f;
}

template <class T>
std::vector<std::string> NmtTrainer<T>::summary_lines() const {
  std::string per;
  char buf[96];
  for (std::size_t r = 0; r < rank_idle_share_.size(); ++r) {
    std::snprintf(buf, sizeof buf, "%s%.1f%%", r ? " / " : "", 100.0 * rank_idle_share_[r]);
    per += buf;
  }
  std::string model;
  const auto wm = wavefront_model(cfg_, pl_, local_, opt_.time_chunk);
  for (int r = 0; r < pl_.k(); ++r) {
    std::snprintf(buf, sizeof buf, "%s%.1f%%", r ? " / " : "", 100.0 * wm.idle_share(r));
    model += buf;
  }
  return {"# wavefront idle (fill and drain) per rank: " + per + " measured; the wavefront model (FLOPs only) " +
          model + " for model-parallel ranks 0.." + std::to_string(pl_.k() - 1)};
}

template <class T>
std::vector<io::ExtraDataset> NmtTrainer<T>::datasets() {
  auto out = log_.datasets();
  out.push_back({"/nmt/idle_share", {rank_idle_share_.size()}, rank_idle_share_,
                 {"1", "per rank: median over the timed steps of the time waiting for another rank's chunk, as a "
                       "share of forward + backward"}});
  return out;
}

template <class T>
NamedStrings NmtTrainer<T>::attributes() const {
  return {{"variant", "k=" + std::to_string(opt_.model_parallel) + " replicas=" + std::to_string(opt_.replicas) + " sync"},
          {"nmt_update", "sync"},
          {"nmt_model_parallel", std::to_string(opt_.model_parallel)},
          {"nmt_replicas", std::to_string(opt_.replicas)},
          {"nmt_time_chunk", std::to_string(opt_.time_chunk)},
          {"nmt_layout", pl_.describe()}};
}

template <class T>
std::vector<io::TensorPart> NmtTrainer<T>::state_parts(bool writer) {
  if (!state_) {  // every tensor (or vocabulary shard) is on one rank of a replica: the first replica writes
    state_ = std::make_unique<StateIo<master_t<T>>>();
    const auto& ps = stage_->params();
    state_->add("params", ps, checkpoint_params(*mixed_, ps), replica_ == 0);
    if (opt_state_->m().size()) state_->add("optim/m", ps, opt_state_->m(), replica_ == 0);
    if (opt_state_->v().size()) state_->add("optim/v", ps, opt_state_->v(), replica_ == 0);
  }
  return state_->parts(writer);
}

template <class T>
void NmtTrainer<T>::restore_state(const std::vector<io::TensorPart>& parts, std::int64_t steps) {
  state_parts(false);
  state_->restore(parts);
  mixed_->refresh_params(stage_->params());
  opt_state_->set_steps(steps);
}

template class NmtTrainer<float>;
template class NmtTrainer<double>;
template class NmtTrainer<bf16>;
template class NmtTrainer<fp16>;

}  // namespace partrain::parallel::nmt
