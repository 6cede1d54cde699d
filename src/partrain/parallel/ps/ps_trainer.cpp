#include "partrain/parallel/ps/ps_trainer.hpp"

#include <algorithm>

#include <cmath>
#include <cstdio>
#include <limits>

#include "partrain/core/error.hpp"
#include "partrain/core/log.hpp"
#include "partrain/core/timer.hpp"
#include "partrain/io/checkpoint.hpp"

namespace partrain::parallel::ps {
namespace {
template <class T>
std::vector<std::pair<std::int64_t, std::int64_t>> ranges_of(const models::Model<T>& m) {
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (std::size_t l = 0; l < m.layers().size(); ++l) out.push_back(m.declared_range(l));
  return out;
}

void sum_all(MPI_Comm comm, std::vector<double>& v, MPI_Op op = MPI_SUM) {
  if (v.empty()) return;
  std::vector<double> out(v.size());
  coll::allreduce(v.data(), out.data(), int(v.size()), MPI_DOUBLE, op, comm);
  v.swap(out);
}

double reduce1(MPI_Comm comm, double x, MPI_Op op) {
  double out = 0;
  coll::allreduce(&x, &out, 1, MPI_DOUBLE, op, comm);
  return out;
}
}  // namespace

template <class T>
PsTrainer<T>::PsTrainer(models::Model<T>& model, std::uint64_t seed, const models::Dataset<T>& data,
                        const models::TrainSpec& spec, coll::MpiCommunicator& world, const Options& opt,
                        std::string model_name, std::string config_toml)
    : model_(model),
      seed_(seed),
      world_(world),
      opt_(opt),
      model_name_(std::move(model_name)),
      config_toml_(std::move(config_toml)) {
  const int n = world.size(), me = world.rank();
  const bool worker = me >= opt.servers + (opt.scheduler ? 1 : 0);
  model.build(seed, worker, worker);  // servers and the scheduler: declarations only
  layout_ = std::make_unique<Layout>(n, opt, model.params().numel(), ranges_of(model));
  role_ = layout_->role(me);
  ps_ = std::make_unique<coll::MpiCommunicator>(world.comm());
  servers_ = ps_->split(role_ == Role::Server ? 0 : 1, me);
  mb_ = std::make_unique<Mailbox>(*ps_);
  members_ = std::make_unique<Membership>(*layout_, opt.faults.of(Fault::Join));
  coord_ = std::make_unique<Coordinator>(*layout_, opt_, *mb_, *members_, events_, 0.0);
  if (synchronous(opt.mode) && opt.mode != Mode::Local) coord_->total_clocks = spec.steps;
  cx_ = std::make_unique<Context>(Context{*layout_, opt_, *mb_, *members_, *coord_, events_, spec, 0.0, 0, 0,
                                          opt.dump_state, model_name_, config_toml_, false});
  if (role_ == Role::Server) server_ = std::make_unique<Server<T>>(*cx_, model.params(), seed, *servers_);
  if (role_ == Role::Worker) worker_ = std::make_unique<Worker<T>>(*cx_, model, data);
}

template <class T>
PsTrainer<T>::~PsTrainer() = default;

template <class T>
StepRecord PsTrainer<T>::step(std::int64_t, const BeforeUpdate&) {
  throw RuntimeError("partrain-ps trains with run(), not step by step");
}

template <class T>
void PsTrainer<T>::resume() {
  const std::string& path = opt_.resume_path;
  if (path.empty()) return;
  std::vector<io::TensorPart> none;
  io::CheckpointMeta meta;
  io::read_checkpoint(world_.comm(), path, none, &meta);
  if (server_) server_->load(path);
  first_step_ = meta.step;
  first_version_ = std::int64_t(meta.numbers["version"]);
  resumed_from_ = path;
  if (world_.rank() == 0)
    events_.push_back(log_event(0.0, EventKind::Resumed, 0, first_step_, "from " + path + " (step " + std::to_string(first_step_) + ")"));
}

template <class T>
RunResult PsTrainer<T>::run(std::int64_t steps, const BeforeUpdate& at_end) {
  PARTRAIN_REQUIRE(steps == cx_->train.steps, "run length differs from the train spec");
  if (opt_.resume) resume();
  cx_->first_step = first_step_;
  cx_->first_version = first_version_;
  coll::barrier(world_.comm());
  cx_->t0 = wall_time_s();
  coord_->start(cx_->t0);  // heartbeat clocks start with the run
  if (worker_) worker_->run();
  if (server_) server_->run();
  if (role_ == Role::Scheduler) {
    std::vector<std::pair<int, Header>> in;
    std::int64_t last = -1;
    for (;;) {
      in.clear();
      mb_->poll(in);
      for (const auto& [from, h] : in) {
        coord_->on_message(from, h);
        members_->apply(from, h);
        if (h.type() == kExit) cx_->exit_seen = true;
      }
      const std::int64_t clock = coord_->slowest_pushes();
      if (clock != last) {
        last = clock;
        opt_.faults.kill_if_planned(cx_->rank(), clock);
        if (opt_.faults.stalls(cx_->rank(), clock)) {
          events_.push_back(log_event(cx_->now(), EventKind::Stalled, cx_->rank(), clock, "scheduler goes silent"));
          cx_->stall_until_exit();
          break;
        }
      }
      if (cx_->exit_seen || coord_->exit_sent()) break;
      coord_->tick();
      Mailbox::pause();
    }
  }
  mb_->drain(120.0);
  gather_results();
  RunResult r;
  r.first_step = first_step_;
  r.loss = loss_;
  if (worker_) r.mine = worker_->records();
  r.phase_names = {"wait_pull", "compute", "delay", "optimizer"};
  if (at_end) at_end(loss_.empty() ? 0.0 : loss_.back());
  return r;
}

template <class T>
void PsTrainer<T>::gather_results() {
  const MPI_Comm comm = world_.comm();
  const auto& L = *layout_;
  const std::int64_t n = cx_->train.steps - first_step_;
  loss_.assign(std::size_t(n), 0.0);
  rows_.assign(std::size_t(n), 0.0);
  t_done_.assign(std::size_t(n), 0.0);
  const std::size_t W = std::size_t(L.workers());
  worker_wait_.assign(W, 0.0);
  worker_units_.assign(W, 0.0);
  worker_samples_.assign(W, 0.0);
  worker_pushes_.assign(W, 0.0);
  double cs_worker = 0;
  bool holds = false;
  if (worker_) {
    const std::int64_t from = members_->removed_from(cx_->rank());
    for (const auto& it : worker_->items()) {
      if (from >= 0 && it.clock >= from) continue;
      const auto k = std::size_t(it.step - first_step_);
      if (k >= std::size_t(n)) continue;
      loss_[k] += it.loss_sum;
      rows_[k] += it.rows;
      t_done_[k] = std::max(t_done_[k], it.t_done);
    }
    const auto wi = std::size_t(L.worker_index(cx_->rank()));
    worker_wait_[wi] = worker_->wait_s();
    worker_units_[wi] = double(worker_->records().size());
    worker_samples_[wi] = double(worker_->samples_pushed());
    worker_pushes_[wi] = double(worker_->pushes_kept());
    holds = !worker_->stalled() && !members_->removed(cx_->rank()) && members_->member(cx_->rank());
    auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model_.params().params());
    for (std::size_t i = 0; i < hp.size(); ++i) cs_worker += double(hp.data()[i]) * double(i % 13 + 1);
  }
  sum_all(comm, loss_);
  sum_all(comm, rows_);
  sum_all(comm, t_done_, MPI_MAX);
  for (std::size_t k = 0; k < loss_.size(); ++k) loss_[k] = rows_[k] > 0 ? loss_[k] / rows_[k] : std::nan("");
  sum_all(comm, worker_wait_);
  sum_all(comm, worker_units_);
  sum_all(comm, worker_samples_);
  sum_all(comm, worker_pushes_);

  // Servers: staleness histogram, shard versions, counts.
  std::int64_t max_st = 0;
  if (server_)
    for (const auto& [s, c] : server_->stats().staleness) max_st = std::max(max_st, s);
  max_st = std::int64_t(reduce1(comm, double(max_st), MPI_MAX));
  staleness_.assign(std::size_t(max_st + 1), 0.0);
  shard_versions_.assign(std::size_t(L.shards()), -1.0);
  double last_update = 0, samples = 0;
  if (server_) {
    const auto& st = server_->stats();
    for (const auto& [s, c] : st.staleness) staleness_[std::size_t(s)] += double(c);
    last_update = st.last_update_s;
    for (const auto& [j, v] : server_->primary_versions()) shard_versions_[std::size_t(j)] = double(v);
  }
  sum_all(comm, staleness_);
  sum_all(comm, shard_versions_, MPI_MAX);
  wall_s_ = reduce1(comm, last_update, MPI_MAX);
  for (double s : worker_samples_) samples += s;
  samples_ = samples;
  updates_ = shard_versions_.empty() ? 0 : shard_versions_[0] - double(first_version_);
  const ServerStats none{};
  const ServerStats& st = server_ ? server_->stats() : none;
  max_gap_ = reduce1(comm, double(st.max_gap), MPI_MAX);
  bound_waits_ = reduce1(comm, double(st.bound_waits), MPI_SUM);
  delayed_holds_ = reduce1(comm, worker_ ? double(worker_->holds()) : 0.0, MPI_SUM);
  discarded_ = reduce1(comm, double(st.discarded), MPI_SUM);
  checkpoints_ = reduce1(comm, double(st.checkpoints), MPI_MAX);
  skipped_ = reduce1(comm, double(st.skipped), MPI_SUM);
  final_scale_ = reduce1(comm, server_ && !server_->stalled() ? st.loss_scale : 1e300, MPI_MIN);
  if (synchronous(opt_.mode)) {
    const std::int64_t k = opt_.local_steps;
    expected_updates_ = opt_.mode == Mode::Local ? double((cx_->train.steps + k - 1) / k - first_step_ / k)
                                                 : double(cx_->train.steps - first_step_);
  } else {
    expected_updates_ = 0;
    for (double p : worker_pushes_) expected_updates_ += p;
  }

  // Events: every rank's, gathered on every rank (a few).
  std::vector<double> mine;
  std::string text;
  for (const auto& e : events_) {
    mine.insert(mine.end(), {e.t, double(int(e.kind)), double(e.rank), double(e.clock)});
    char line[96];
    std::snprintf(line, sizeof line, "%.3f s %s (rank %d, clock %lld): ", e.t, event_name(e.kind), e.rank, (long long)e.clock);
    text += line + e.text + "\n";
  }
  int count = int(mine.size()), tcount = int(text.size());
  std::vector<int> counts(std::size_t(world_.size())), tcounts(std::size_t(world_.size()));
  MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, comm);
  MPI_Allgather(&tcount, 1, MPI_INT, tcounts.data(), 1, MPI_INT, comm);
  std::vector<int> displs(counts.size(), 0), tdispls(counts.size(), 0);
  for (std::size_t r = 1; r < counts.size(); ++r) {
    displs[r] = displs[r - 1] + counts[r - 1];
    tdispls[r] = tdispls[r - 1] + tcounts[r - 1];
  }
  event_rows_.assign(std::size_t(displs.back() + counts.back()), 0.0);
  std::string all(std::size_t(tdispls.back() + tcounts.back()), ' ');
  MPI_Allgatherv(mine.data(), count, MPI_DOUBLE, event_rows_.data(), counts.data(), displs.data(), MPI_DOUBLE, comm);
  MPI_Allgatherv(text.data(), tcount, MPI_CHAR, all.data(), tcounts.data(), tdispls.data(), MPI_CHAR, comm);
  event_text_ = all;
  removed_ = promotions_ = takeovers_ = joined_ = 0;
  for (std::size_t i = 0; i + 3 < event_rows_.size(); i += 4) {
    const auto k = EventKind(int(event_rows_[i + 1]));
    removed_ += k == EventKind::WorkerRemoved;
    promotions_ += k == EventKind::ServerPromoted;
    takeovers_ += k == EventKind::CoordinatorTakeover;
    joined_ += k == EventKind::WorkerJoined;
  }

  // Synchronous modes: every worker still a member ends holding the servers' parameters.
  if (synchronous(opt_.mode)) {
    const auto params = gather_full(false);
    double cs = 0;
    if (world_.rank() == 0) {
      std::vector<double> flat(std::size_t(model_.params().numel()));
      const auto& infos = model_.params().infos();
      for (std::size_t i = 0; i < infos.size(); ++i)
        std::copy(params[i].values.begin(), params[i].values.end(), flat.begin() + infos[i].offset);
      for (std::size_t i = 0; i < flat.size(); ++i) cs += double(T(flat[i])) * double(i % 13 + 1);
    }
    MPI_Bcast(&cs, 1, MPI_DOUBLE, 0, comm);
    int ok = !holds || cs_worker == cs ? 1 : 0;
    if (cx_->dump) ok = 1;  // the gathered values are the ones before the last update
    int all_ok = 0;
    coll::allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
    workers_agree_ = all_ok == 1;
  }
}

template <class T>
std::vector<io::NamedTensor> PsTrainer<T>::gather_full(bool grads) {
  const MPI_Comm comm = world_.comm();
  std::vector<double> mine;  // (begin, count, values...) per shard held as primary
  if (server_)
    for (const auto& [begin, values] : server_->primary_values(grads)) {
      mine.push_back(double(begin));
      mine.push_back(double(values.size()));
      mine.insert(mine.end(), values.begin(), values.end());
    }
  int count = int(mine.size());
  std::vector<int> counts(std::size_t(world_.size()));
  MPI_Gather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, comm);
  std::vector<int> displs(counts.size(), 0);
  for (std::size_t r = 1; r < counts.size(); ++r) displs[r] = displs[r - 1] + counts[r - 1];
  std::vector<double> all(world_.rank() == 0 ? std::size_t(displs.back() + counts.back()) : 0);
  MPI_Gatherv(mine.data(), count, MPI_DOUBLE, all.data(), counts.data(), displs.data(), MPI_DOUBLE, 0, comm);
  std::vector<io::NamedTensor> out;
  if (world_.rank() != 0) return out;
  std::vector<double> flat(std::size_t(model_.params().numel()), 0.0);
  for (std::size_t i = 0; i + 1 < all.size();) {
    const auto begin = std::size_t(all[i]), len = std::size_t(all[i + 1]);
    std::copy(all.begin() + std::ptrdiff_t(i + 2), all.begin() + std::ptrdiff_t(i + 2 + len), flat.begin() + std::ptrdiff_t(begin));
    i += 2 + len;
  }
  for (const auto& p : model_.params().infos())
    out.push_back({p.name, p.shape,
                   std::vector<double>(flat.begin() + p.offset, flat.begin() + p.offset + p.size)});
  return out;
}

template <class T>
std::vector<std::pair<std::string, bool>> PsTrainer<T>::self_check() {
  bool versions = true;
  for (double v : shard_versions_) versions = versions && v - double(first_version_) == expected_updates_;
  std::vector<std::pair<std::string, bool>> out = {{"every update applied on every shard", versions}};
  if (synchronous(opt_.mode)) out.push_back({"workers hold the servers' parameters", workers_agree_});
  return out;
}

template <class T>
std::string PsTrainer<T>::describe() const {
  const auto& L = *layout_;
  std::string s = std::string("ps ") + name(opt_.mode);
  if (opt_.mode == Mode::Ssp) s += " (staleness " + std::to_string(opt_.staleness) + ")";
  if (opt_.mode == Mode::Local) s += " (" + std::to_string(opt_.local_steps) + " local steps)";
  if (opt_.mode == Mode::HalfSync) s += " (jitter " + std::to_string(int(opt_.jitter_ms)) + " ms)";
  const int W = L.workers() - L.spares();
  s += ": " + std::to_string(L.servers()) + " server" + (L.servers() > 1 ? "s" : "") + " + " +
       std::to_string(W) + " worker" + (W > 1 ? "s" : "") +
       (L.spares() > 0 ? " + " + std::to_string(L.spares()) + " spare" + (L.spares() > 1 ? "s" : "") : std::string()) +
       (L.scheduler() >= 0 ? " + scheduler (rank " + std::to_string(L.scheduler()) + ")" : " (server 0 coordinates)") +
       ", " + std::to_string(L.numel()) + " parameters in " + std::to_string(L.pieces().size()) + " pieces" +
       ", backup " + (opt_.backup ? "on" : "off");
  if (opt_.straggler >= 0)
    s += ", straggler rank " + std::to_string(opt_.straggler) + " +" + std::to_string(int(opt_.straggler_ms)) + " ms";
  return s;
}

template <class T>
std::string PsTrainer<T>::step_note(const StepRecord& rec) const {
  double w = 0;
  for (const auto& [k, v] : rec.phases)
    if (k == "wait_pull") w = v;
  char buf[64];
  std::snprintf(buf, sizeof buf, "wait %4.1f%%", rec.time_s > 0 ? 100.0 * w / rec.time_s : 0.0);
  return buf;
}

template <class T>
NamedFigures PsTrainer<T>::summary(const RunMedians& m) {
  double st_sum = 0, st_n = 0, st_max = 0;
  for (std::size_t s = 0; s < staleness_.size(); ++s) {
    st_sum += double(s) * staleness_[s];
    st_n += staleness_[s];
    if (staleness_[s] > 0) st_max = double(s);
  }
  std::vector<double> waits = worker_wait_;
  NamedFigures f = {{"samples_per_s", wall_s_ > 0 ? samples_ / wall_s_ : 0.0},
          {"updates_per_s", wall_s_ > 0 ? updates_ / wall_s_ : 0.0},
          {"updates_applied", updates_},
          {"train_wall_s", wall_s_},
          {"staleness_mean", st_n > 0 ? st_sum / st_n : 0.0},
          {"staleness_max", st_max},
          {"max_clock_gap", max_gap_},
          {"bound_waits", bound_waits_},
          {"delayed_holds", delayed_holds_},
          {"pushes_discarded", discarded_},
          {"workers_removed", removed_},
          {"workers_joined", joined_},
          {"backups_promoted", promotions_},
          {"coordinator_takeovers", takeovers_},
          {"checkpoints_written", checkpoints_},
          {"worker_wait_median_s", io::median(waits)},
          {"wait_share", m.step_time_s > 0 ? m.phase("wait_pull") / m.step_time_s : 0.0}};
  if (std::is_same_v<T, fp16>) {  // shard updates skipped for inf/NaN (all shards), the smallest shard scale at the end
    f.push_back({"skipped_steps", skipped_});
    f.push_back({"final_loss_scale", final_scale_});
  }
  return f;
}

template <class T>
std::vector<std::string> PsTrainer<T>::summary_lines() const {
  std::vector<std::string> out;
  char line[320];
  double st_sum = 0, st_n = 0;
  for (std::size_t s = 0; s < staleness_.size(); ++s) {
    st_sum += double(s) * staleness_[s];
    st_n += staleness_[s];
  }
  std::snprintf(line, sizeof line,
                "# ps: %.0f updates in %.3f s (%.1f updates/s, %.1f samples/s), staleness mean %.2f max %zu, "
                "clock gap max %.0f, worker wait median %.3f s",
                updates_, wall_s_, wall_s_ > 0 ? updates_ / wall_s_ : 0.0, wall_s_ > 0 ? samples_ / wall_s_ : 0.0,
                st_n > 0 ? st_sum / st_n : 0.0, staleness_.empty() ? std::size_t(0) : staleness_.size() - 1, max_gap_,
                io::median(std::vector<double>(worker_wait_)));
  out.push_back(line);
  if (!event_text_.empty()) {  // each was printed as it happened ("# ps event at ..."); not again
    const auto n = std::count(event_text_.begin(), event_text_.end(), '\n');
    out.push_back("# ps: " + std::to_string(n) + " membership event" + (n == 1 ? "" : "s") +
                  " (printed as they happened; in the result file: /ps/events and the ps_events attribute)");
  }
  return out;
}

template <class T>
std::vector<io::ExtraDataset> PsTrainer<T>::datasets() {
  std::vector<io::ExtraDataset> d;
  auto add = [&](const std::string& path, std::vector<hsize_t> dims, std::vector<double> v, const char* units, const char* desc) {
    d.push_back({path, std::move(dims), std::move(v), {units, desc}});
  };
  add("/ps/staleness_histogram", {staleness_.size()}, staleness_, "1",
      "applied updates by staleness (index): the shard's update count when applied minus the count the pull read");
  add("/ps/loss_wall_time_s", {t_done_.size()}, t_done_, "s",
      "per global step (from first_step): seconds since the start at which its last contribution was computed");
  add("/ps/worker_wait_s", {worker_wait_.size()}, worker_wait_, "s", "per worker: total time waiting for pulls");
  add("/ps/worker_minibatches", {worker_units_.size()}, worker_units_, "1", "per worker: own mini-batches computed");
  add("/ps/worker_samples", {worker_samples_.size()}, worker_samples_, "1",
      "per worker: samples in the contributions the servers applied (supplements included)");
  add("/ps/shard_updates", {shard_versions_.size()}, shard_versions_, "1", "per shard: update count at the end");
  const std::size_t ev = event_rows_.size() / 4;
  add("/ps/events", {ev, 4}, event_rows_, "1",
      "per event: [seconds since start, kind (1 worker removed, 2 backup promoted, 3 coordinator takeover, "
      "4 checkpoint, 5 resumed, 6 stalled by fault injection, 7 worker joined), rank, clock]; the text is the root "
      "attribute ps_events");
  return d;
}

template <class T>
NamedStrings PsTrainer<T>::attributes() const {
  const auto& L = *layout_;
  NamedStrings a = {{"ps_mode", name(opt_.mode)},
                    {"variant", name(opt_.mode)},
                    {"ps_servers", std::to_string(L.servers())},
                    {"ps_workers", std::to_string(L.workers())},
                    {"ps_scheduler", L.scheduler() >= 0 ? "true" : "false"},
                    {"ps_staleness", std::to_string(opt_.staleness)},
                    {"ps_local_steps", std::to_string(opt_.local_steps)},
                    {"ps_backup", opt_.backup ? "true" : "false"},
                    {"ps_spares", std::to_string(opt_.spares)},
                    {"ps_straggler", opt_.straggler >= 0 ? std::to_string(opt_.straggler) + ":" + std::to_string(int(opt_.straggler_ms)) : ""},
                    {"ps_first_step", std::to_string(first_step_)},
                    {"ps_events", event_text_}};
  if (!resumed_from_.empty()) a.push_back({"resumed_from", resumed_from_});
  if (!opt_.faults.empty()) a.push_back({"fault_injection", opt_.faults.describe()});
  return a;
}

template class PsTrainer<float>;
template class PsTrainer<double>;
template class PsTrainer<bf16>;
template class PsTrainer<fp16>;

}  // namespace partrain::parallel::ps
