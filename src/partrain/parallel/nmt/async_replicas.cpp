#include "partrain/parallel/nmt/async_replicas.hpp"

#include "partrain/core/error.hpp"
#include "partrain/core/log.hpp"
#include "partrain/core/timer.hpp"

namespace partrain::parallel::nmt {
namespace {

/// Where each of a stage's tensors sits in the whole model's flat buffer: (stage offset, whole offset, size).
template <class T>
std::vector<std::array<std::int64_t, 3>> stage_map(const models::ParamStore<T>& stage, const models::NmtConfig& cfg) {
  models::Nmt<double> ref(cfg);
  ref.build(0, false, false);
  std::vector<std::array<std::int64_t, 3>> out;
  for (const auto& p : stage.infos()) {
    const auto& f = ref.params().info(p.name);
    const std::int64_t cols = p.shape.size() > 1 ? p.shape[1] : 1;
    const std::int64_t row0 = p.shard.sharded() ? std::int64_t(p.shard.index) * p.shape[0] : 0;
    out.push_back({p.offset, f.offset + row0 * cols, p.size});
  }
  return out;
}

void bcast(void* buf, int count, MPI_Datatype type, MPI_Comm comm) {
  MPI_Request req;
  PARTRAIN_MPI_CHECK(MPI_Ibcast(buf, count, type, 0, comm, &req));
  coll::wait(req);
}
}  // namespace

/// The leader's model for partrain-ps's worker: the NMT model's declarations (the whole model's buffers, where pulls
/// land and pushes come from), whose forward_backward runs the replica's k ranks.
template <class T>
class NmtAsyncTrainer<T>::ReplicaModel : public models::Nmt<T> {
 public:
  ReplicaModel(const models::NmtConfig& cfg, NmtAsyncTrainer& owner) : models::Nmt<T>(cfg), o_(owner) {}
  typename models::Model<T>::Workspace make_workspace(std::int64_t samples) const override {
    typename models::Model<T>::Workspace ws;
    ws.rows = samples * this->rows_per_sample();
    return ws;
  }
  double forward_backward(const models::Batch<T>& batch, typename models::Model<T>::Workspace&, double scale,
                          const typename models::Model<T>::Hooks& hooks) override {
    const auto n = this->layers().size();
    for (std::size_t l = 0; l < n; ++l)
      if (hooks.before_forward) hooks.before_forward(l);  // the whole pull first: the stages read it all
    const double loss = o_.replica_step(&batch, scale, this->params().params());
    if (hooks.before_backward) hooks.before_backward(n - 1);  // the worker zeroes the gradients and announces the push
    Kokkos::deep_copy(this->params().grads(), o_.whole_grads_);
    for (std::size_t l = n; l-- > 0;)
      if (hooks.backward_done) hooks.backward_done(l);
    return loss;
  }

 private:
  NmtAsyncTrainer& o_;
};

template <class T>
NmtAsyncTrainer<T>::NmtAsyncTrainer(const models::NmtConfig& cfg, std::uint64_t seed, const models::Dataset<T>& data,
                                    const models::TrainSpec& spec, coll::MpiCommunicator& world,
                                    const NmtOptions& opt, const AsyncOptions& async, std::string model_name,
                                    std::string config_toml)
    : cfg_(cfg), data_(data), spec_(spec), world_(world), opt_(opt), async_(async), pl_(cfg, opt.model_parallel),
      servers_(async.servers) {
  const int w = world.rank(), k = opt.model_parallel;
  if (w >= servers_) {
    replica_ = (w - servers_) / k;
    mp_rank_ = (w - servers_) % k;
  }
  mp_ = world.split(replica_ < 0 ? opt.replicas : replica_, mp_rank_);
  const bool on_ps = replica_ < 0 || mp_rank_ == 0;
  ps_comm_ = world.split(on_ps ? 0 : 1, w);
  const std::int64_t local = spec.global_batch / opt.replicas;
  if (replica_ >= 0) {
    stage_ = std::make_unique<NmtStage<T>>(cfg, pl_, mp_rank_);
    stage_->build(seed);
    exec_ = std::make_unique<NmtExecutor<T>>(cfg, pl_, *mp_, *stage_, local, opt.time_chunk);
    map_ = stage_map(stage_->params(), cfg);
    models::Nmt<double> ref(cfg);
    ref.build(0, false, false);
    whole_grads_ = View1<T>("comm/nmt.whole_grads", ref.params().numel());
    if (mp_rank_ != 0) whole_params_ = View1<T>("comm/nmt.whole_params", ref.params().numel());
    batch_ = data.allocate(local);
  }
  if (on_ps) {
    ps_opt_.servers = servers_;
    ps_opt_.mode = ps::Mode::Asp;
    ps_opt_.delay_buffer = async.delay_buffer;
    ps_opt_.heartbeat_timeout_s = async.heartbeat_timeout_s;
    ps_opt_.checkpoint_every = async.checkpoint_every;
    ps_opt_.checkpoint_dir = async.checkpoint_dir;
    ps_opt_.checkpoint_keep = async.checkpoint_keep;
    ps_opt_.overwrite = async.overwrite;
    ps_opt_.resume = !async.resume_path.empty();
    ps_opt_.resume_path = async.resume_path;
    ps_opt_.faults = async.faults;
    if (replica_ >= 0) ps_model_ = std::make_unique<ReplicaModel>(cfg, *this);
    else ps_model_ = std::make_unique<models::Nmt<T>>(cfg);
    ps_ = std::make_unique<ps::PsTrainer<T>>(*ps_model_, seed, data, spec, *ps_comm_, ps_opt_, std::move(model_name),
                                             std::move(config_toml));
  }
}

template <class T>
NmtAsyncTrainer<T>::~NmtAsyncTrainer() = default;

template <class T>
StepRecord NmtAsyncTrainer<T>::step(std::int64_t, const BeforeUpdate&) {
  throw RuntimeError("asynchronous NMT replicas train with run(), not step by step");
}

template <class T>
double NmtAsyncTrainer<T>::replica_step(const models::Batch<T>* leader_batch, double scale, const View1<T>& whole) {
  // The leader says what comes: [1 (a step) or 0 (stop), the loss scale].
  double cmd[2] = {1.0, scale};
  bcast(cmd, 2, MPI_DOUBLE, mp_->comm());
  if (cmd[0] == 0) return -1.0;
  scale = cmd[1];  // the followers' is the leader's (they were called with none)
  const double t0 = fenced_time_s();
  // The mini-batch and the pulled parameters, from the leader.
  const models::Batch<T>& b = mp_rank_ == 0 ? *leader_batch : batch_;
  const int n = int(b.tokens.size());
  if (mp_rank_ == 0 && leader_batch->samples != batch_.samples)
    throw RuntimeError("a ticket's mini-batch is not the replica's batch size");
  bcast(b.tokens.data(), n, MPI_INT, mp_->comm());
  bcast(b.dec_tokens.data(), n, MPI_INT, mp_->comm());
  bcast(b.targets.data(), n, MPI_INT, mp_->comm());
  bcast(b.lengths.data(), int(b.lengths.size()), MPI_INT, mp_->comm());
  const View1<T> src = mp_rank_ == 0 ? whole : whole_params_;
  mp_->broadcast(src.data(), std::int64_t(src.size()), coll::datatype_of<T>(), 0).wait();
  auto p = stage_->params().params();
  for (const auto& [so, wo, sz] : map_)
    Kokkos::deep_copy(Kokkos::subview(p, Kokkos::make_pair(so, so + sz)), Kokkos::subview(src, Kokkos::make_pair(wo, wo + sz)));
  // The replica's step, then every stage's gradients summed into the whole model's.
  stage_->params().zero_grad();
  StepTimes t;
  const double loss = exec_->step(b, scale, true, t);
  Kokkos::deep_copy(whole_grads_, T(0));
  auto g = stage_->params().grads();
  for (const auto& [so, wo, sz] : map_)
    Kokkos::deep_copy(Kokkos::subview(whole_grads_, Kokkos::make_pair(wo, wo + sz)), Kokkos::subview(g, Kokkos::make_pair(so, so + sz)));
  if (opt_.model_parallel > 1)
    mp_->allreduce(whole_grads_.data(), whole_grads_.data(), std::int64_t(whole_grads_.size()), coll::datatype_of<T>(),
                   coll::ReduceOp::Sum).wait();
  if (mp_rank_ != 0) {
    StepRecord rec;
    rec.time_s = fenced_time_s() - t0;
    rec.phase("compute", t.compute_s);
    follower_records_.push_back(rec);
  }
  return loss;
}

template <class T>
void NmtAsyncTrainer<T>::follow() {
  while (replica_step(nullptr, 0.0, View1<T>()) >= 0.0) {
  }
}

template <class T>
RunResult NmtAsyncTrainer<T>::run(std::int64_t steps, const BeforeUpdate& at_end) {
  RunResult r;
  if (ps_) r = ps_->run(steps, at_end);
  if (replica_ >= 0 && mp_rank_ == 0 && opt_.model_parallel > 1) {
    double cmd[2] = {0.0, 0.0};  // the followers stop
    bcast(cmd, 2, MPI_DOUBLE, mp_->comm());
  }
  if (replica_ >= 0 && mp_rank_ != 0) {
    follow();
    r.mine = follower_records_;
  }
  // Every rank prints the same step lines: the losses and the first step from world rank 0 (a server).
  long long meta[2] = {(long long)r.loss.size(), (long long)r.first_step};
  MPI_Bcast(meta, 2, MPI_LONG_LONG, 0, world_.comm());
  r.loss.resize(std::size_t(meta[0]));
  r.first_step = meta[1];
  MPI_Bcast(r.loss.data(), int(meta[0]), MPI_DOUBLE, 0, world_.comm());
  r.phase_names = {"wait_pull", "compute", "delay", "optimizer"};
  return r;
}

template <class T>
std::string NmtAsyncTrainer<T>::describe() const {
  return "nmt " + std::to_string(opt_.replicas) + " asynchronous replica" + (opt_.replicas > 1 ? "s" : "") + " x " +
         std::to_string(opt_.model_parallel) + " model-parallel rank" + (opt_.model_parallel > 1 ? "s" : "") + " + " +
         std::to_string(servers_) + " server" + (servers_ > 1 ? "s" : "") + " (partrain-ps asp, delay buffer " +
         std::to_string(async_.delay_buffer) + "; " + pl_.describe() + ")";
}

template <class T>
std::vector<std::pair<std::string, bool>> NmtAsyncTrainer<T>::self_check() {
  return ps_ ? ps_->self_check() : std::vector<std::pair<std::string, bool>>{};
}

template <class T>
coll::Counters NmtAsyncTrainer<T>::counters() const {
  coll::Counters c = ps_ ? ps_->counters() : coll::Counters{};
  const auto m = mp_->counters();
  c += m;
  return c;
}

template <class T>
NamedFigures NmtAsyncTrainer<T>::summary(const RunMedians& m) {
  return ps_ ? ps_->summary(m) : NamedFigures{};
}

template <class T>
std::vector<io::ExtraDataset> NmtAsyncTrainer<T>::datasets() {
  return ps_ ? ps_->datasets() : std::vector<io::ExtraDataset>{};
}

template <class T>
NamedStrings NmtAsyncTrainer<T>::attributes() const {
  NamedStrings a = ps_ ? ps_->attributes() : NamedStrings{};
  for (auto& [k, v] : a)
    if (k == "variant")
      v = "k=" + std::to_string(opt_.model_parallel) + " replicas=" + std::to_string(opt_.replicas) + " async";
  a.push_back({"nmt_update", "async"});
  a.push_back({"nmt_model_parallel", std::to_string(opt_.model_parallel)});
  a.push_back({"nmt_replicas", std::to_string(opt_.replicas)});
  a.push_back({"nmt_time_chunk", std::to_string(opt_.time_chunk)});
  a.push_back({"nmt_delay_buffer", std::to_string(async_.delay_buffer)});
  a.push_back({"nmt_layout", pl_.describe()});
  return a;
}

template <class T>
std::vector<std::string> NmtAsyncTrainer<T>::summary_lines() const {
  return ps_ ? ps_->summary_lines() : std::vector<std::string>{};
}

template class NmtAsyncTrainer<float>;
template class NmtAsyncTrainer<double>;
template class NmtAsyncTrainer<bf16>;
template class NmtAsyncTrainer<fp16>;

}  // namespace partrain::parallel::nmt
