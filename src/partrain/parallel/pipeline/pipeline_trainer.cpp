#include "partrain/parallel/pipeline/pipeline_trainer.hpp"

#include <algorithm>
#include <cstdio>

#include "partrain/collectives/wait.hpp"
#include "partrain/core/error.hpp"
#include "partrain/core/fault.hpp"
#include "partrain/core/log.hpp"
#include "partrain/core/timer.hpp"
#include "partrain/kernels/elementwise.hpp"
#include "partrain/models/gpt_layers.hpp"
#include "partrain/parallel/pipeline/partition.hpp"
#include "partrain/parallel/tp/gpt.hpp"

namespace partrain::parallel::pipeline {
namespace {
double phase_of(const StepRecord& r, const char* name) {
  for (const auto& [k, v] : r.phases)
    if (k == name) return v;
  return 0.0;
}

/// Every rank's value gathered to rank 0 of `comm` (empty elsewhere).
std::vector<double> gather0(MPI_Comm comm, double v) {
  int rank = 0, n = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &n);
  std::vector<double> all(rank == 0 ? std::size_t(n) : 0);
  MPI_Request req;
  PARTRAIN_MPI_CHECK(MPI_Igather(&v, 1, MPI_DOUBLE, all.data(), 1, MPI_DOUBLE, 0, comm, &req));
  coll::wait(req);
  return all;
}

}  // namespace

template <class T>
PipelineTrainer<T>::PipelineTrainer(const MakeModel& make, std::uint64_t seed, const models::Dataset<T>& data,
                                    const models::TrainSpec& spec, coll::ProcessGrid& grid, TpContext* tp,
                                    const PipelineOptions& opts, const EpGroups* ep)
    : data_(data), spec_(spec), grid_(grid), tp_(tp), opts_(opts), scaler_(spec.loss_scale) {
  if (ep) ep_ = *ep;
  const auto shape = grid.grid().shape();
  const auto& sch = opts.schedule;
  PARTRAIN_REQUIRE(sch.p == shape.pp, "the schedule's stage count must be the grid's pp degree");
  stage_ = grid.coord().pp;
  local_ = spec.global_batch / shape.dp;
  first_sample_ = local_ * grid.coord().dp;
  mb_samples_ = local_ / sch.m;
  PARTRAIN_REQUIRE(mb_samples_ * sch.m * shape.dp == spec.global_batch, "global batch = dp · m · microbatch");
  auto probe = make();
  const auto body = probe->body_layers();
  const std::int64_t mb_rows = mb_samples_ * probe->rows_per_sample();
  std::vector<double> costs;
  double first_extra = 0, last_extra = 0;
  for (std::size_t i = 0; i < probe->layers().size(); ++i) {
    const double f = probe->layers()[i]->forward_flops(mb_rows);
    if (i < body.first) first_extra += f;
    else if (i >= body.second) last_extra += f;
    else costs.push_back(f);
  }
  const int P = sch.chunks();
  const auto ranges = partition_layers(opts.partition, opts.partition_counts, costs, P, first_extra, last_extra);
  const std::size_t n_layers = probe->layers().size();
  auto range_of = [&](int c) {
    const std::size_t a = c == 0 ? 0 : body.first + std::size_t(ranges[std::size_t(c)].first);
    const std::size_t b = c == P - 1 ? n_layers : body.first + std::size_t(ranges[std::size_t(c)].second);
    return std::make_pair(a, b);
  };
  for (int c = 0; c < P; ++c) {  // the whole layout, the same on every rank: "embedding .. blocks.1 | …"
    const auto [a, b] = range_of(c);
    const std::string span = probe->layers()[a]->name() + (b - a > 1 ? " .. " + probe->layers()[b - 1]->name() : "");
    layout_ += (c ? " | " : "") + std::string("stage ") + std::to_string(c % sch.p) + ": " + span;
  }
  if (ep_.ep) {
    const auto* gpt = dynamic_cast<const models::Gpt<T>*>(probe.get());
    PARTRAIN_REQUIRE(gpt && gpt->config().moe.enabled(), "expert parallelism needs the mixture-of-experts GPT");
    experts_ = gpt->config().moe.experts;
    expert_first_ = gpt->config().expert_first;
    exchange_ = std::make_unique<AlltoallExchange<T>>(*ep_.ep, experts_, gpt->config().channels, ep_.algo);
  }
  for (int j = 0; j < sch.v; ++j) {
    const auto [a, b] = range_of(j * sch.p + stage_);
    chunks_.push_back(std::make_unique<ModelChunk<T>>(make(), a, b, mb_rows));
    chunks_.back()->build(seed);
    if (exchange_)  // before any activations exist: an MoE layer's state holds its experts' rows apart
      for (const auto& l : chunks_.back()->layers())
        if (const auto* blk = dynamic_cast<const models::GptBlock<T>*>(l.get()); blk && blk->moe())
          blk->moe()->set_exchange(exchange_.get());
    reducers_.push_back(std::make_unique<GradientReducer<T>>(*chunks_.back(), grid.dp(), opts.dp, ep_.edp));
    optimizers_.push_back(std::make_unique<models::Optimizer<master_t<T>>>(spec.optimizer, chunks_.back()->params().numel()));
    mixed_.push_back(std::make_unique<models::MixedPrecision<T>>(chunks_.back()->params(), seed, spec, &scaler_));
  }
  if (!probe->tied_parameters().empty() && sch.p > 1)  // Megatron's embedding group: first and last stage
    embedding_ = grid.pp().split(stage_ == 0 || stage_ == sch.p - 1 ? 0 : 1, stage_);
  links_ = std::make_unique<StageLinks<T>>(grid.pp(), sch);
  std::vector<ModelChunk<T>*> cs;
  std::vector<GradientReducer<T>*> rs;
  for (std::size_t j = 0; j < chunks_.size(); ++j) {
    cs.push_back(chunks_[j].get());
    rs.push_back(reducers_[j].get());
  }
  exec_ = std::make_unique<Executor<T>>(sch, stage_, cs, rs, *links_, opts.recompute);
  batch_ = data.allocate(local_);
  const std::int64_t rps = probe->rows_per_sample();
  for (int k = 0; k < sch.m; ++k) {  // microbatch k: samples [k·mb, (k+1)·mb) of this rank's slice
    models::Batch<T> mb;
    mb.samples = mb_samples_;
    const std::int64_t s0 = k * mb_samples_;
    if (batch_.features.size() > 0)
      mb.features = View2<T>(batch_.features.data() + s0 * std::int64_t(batch_.features.extent(1)), mb_samples_,
                             batch_.features.extent(1));
    if (batch_.tokens.size() > 0) mb.tokens = IndexView1(batch_.tokens.data() + s0 * rps, mb_samples_ * rps);
    mb.targets = IndexView1(batch_.targets.data() + s0 * rps, mb_samples_ * rps);
    microbatches_.push_back(mb);
  }
}

template <class T>
void PipelineTrainer<T>::sync_tied_grads() {
  // The tied parameters' two copies: the first chunk's (declared by the embedding) and the last chunk's copy.
  int first = -1, last = -1;
  for (std::size_t j = 0; j < chunks_.size(); ++j) {
    if (chunks_[j]->holds_first()) first = int(j);
    if (!chunks_[j]->tied_copies().empty()) last = int(j);
  }
  const auto names = last >= 0    ? chunks_[std::size_t(last)]->tied_copies()
                     : first >= 0 ? chunks_[std::size_t(first)]->tied_parameters()
                                  : std::vector<std::string>{};
  auto sync = [&](const auto& grad_of) {
    for (const auto& name : names) {
      if (first >= 0 && last >= 0) {  // both on this rank (one stage, interleaved): add them here
        kernels::sum_both("partrain::pipeline::tied_sum", grad_of(first, name), grad_of(last, name));
      } else if (embedding_ && (first >= 0 || last >= 0)) {
        auto g = grad_of(first >= 0 ? first : last, name);
        embedding_->allreduce(g.data(), g.data(), std::int64_t(g.extent(0))).wait();
      }
    }
  };
  if (wide_grads())  // the reduced fp32 copy is what the optimizer reads
    sync([&](int j, const std::string& name) {
      const auto& info = chunks_[std::size_t(j)]->params().info(name);
      return View1<float>(reducers_[std::size_t(j)]->fp32_grads().data() + info.offset, info.size);
    });
  else
    sync([&](int j, const std::string& name) { return chunks_[std::size_t(j)]->params().flat_grad(name); });
}

template <class T>
bool PipelineTrainer<T>::update(double loss_scale) {
  if constexpr (std::is_same_v<T, fp16>) {
    long long mine = 0, any = 0;
    for (std::size_t j = 0; j < chunks_.size(); ++j)
      mine += wide_grads() ? kernels::nonfinite_count(reducers_[j]->fp32_grads())
                           : kernels::nonfinite_count(chunks_[j]->params().grads());
    coll::allreduce(&mine, &any, 1, MPI_LONG_LONG, MPI_MAX, grid_.world().comm());
    if (!scaler_.update(any > 0)) return false;
  }
  for (std::size_t j = 0; j < chunks_.size(); ++j) {
    auto& ps = chunks_[j]->params();
    if (wide_grads()) mixed_[j]->update(*optimizers_[j], ps, reducers_[j]->fp32_grads(), loss_scale);
    else mixed_[j]->update(*optimizers_[j], ps, ps.grads(), loss_scale);
  }
  return true;
}

template <class T>
StepRecord PipelineTrainer<T>::step(std::int64_t s, const BeforeUpdate& before_update) {
  data_.fill(std::uint64_t(s), first_sample_, batch_);
  coll::barrier(grid_.world().comm());
  const double tp0 = tp_ ? tp_->comm_s : 0.0;
  for (auto& r : reducers_) r->begin_step();
  if (exchange_) exchange_->take_time();
  const double t0 = fenced_time_s();
  const double slept = [] {  // --inject slow: this stage's compute is late
    const double w0 = wall_time_s();
    straggle();
    return wall_time_s() - w0;
  }();
  for (auto& c : chunks_) c->params().zero_grad();
  const double rows = double(spec_.global_batch * chunks_.front()->rows_per_sample());
  const double loss_scale = std::is_same_v<T, fp16> ? scaler_.scale() : 1.0;
  std::vector<TimelineEntry> tl;
  const StageStep st = exec_->run(microbatches_, loss_scale / rows, t0, &tl);
  timeline_steps_.insert(timeline_steps_.end(), tl.size(), int(s));
  timeline_.insert(timeline_.end(), tl.begin(), tl.end());
  std::vector<GradientReducer<T>*> rs;
  for (auto& r : reducers_) rs.push_back(r.get());
  const double final_wait = GradientReducer<T>::finish_all(rs);
  const double t_dp = fenced_time_s();
  sync_tied_grads();
  const double t_tied = fenced_time_s();
  for (std::size_t j = 0; j < chunks_.size(); ++j) {  // on the fp32 copy when the gradients were reduced in fp32
    if constexpr (is_half_v<T>) {
      if (wide_grads()) chunks_[j]->finalize_grads_wide(chunks_[j]->params(), reducers_[j]->fp32_grads());
      else chunks_[j]->finalize_grads();
    } else {
      chunks_[j]->finalize_grads();
    }
  }
  const double t_grads = fenced_time_s();
  const bool scorer = chunks_.back()->holds_last() && (!tp_ || tp_->rank() == 0);
  // the MoE load-balancing loss is any stage's, counted once per tensor-parallel group
  const double mine = (scorer ? st.loss_sum : 0.0) + (!tp_ || tp_->rank() == 0 ? st.aux_sum : 0.0);
  double total = 0;
  coll::allreduce(&mine, &total, 1, MPI_DOUBLE, MPI_SUM, grid_.world().comm());
  StepRecord rec;
  rec.loss = total / rows;
  if (before_update) before_update(rec.loss);
  const double t_opt0 = fenced_time_s();
  log_.record(loss_scale, !update(loss_scale));
  const double t_end = fenced_time_s();
  double exposed = final_wait;
  for (auto& r : reducers_) exposed += r->exposed_s();
  rec.time_s = (t_grads - t0) + (t_end - t_opt0);
  rec.phase("forward", st.forward_s + slept);
  rec.phase("backward", st.backward_s + st.weight_s);
  rec.phase("weight", st.weight_s);
  rec.phase("bubble", st.bubble_s);
  rec.phase("p2p", st.p2p_s);
  rec.phase("pipeline", st.span_s);
  rec.phase("comm_exposed", exposed);
  rec.phase("embedding_sync", t_tied - t_dp);
  rec.phase("optimizer", t_end - t_opt0);
  if (tp_) rec.phase("tp_comm", tp_->comm_s - tp0);
  const double a2a = exchange_ ? exchange_->take_time() : 0.0;  // inside forward and backward: a wait for the group
  if (exchange_) rec.phase("alltoall", a2a);
  rec.phase("busy", slept + st.forward_s + st.backward_s + st.weight_s - (tp_ ? tp_->comm_s - tp0 : 0.0) - a2a +
                        (t_end - t_opt0));
  peak_inflight_ = std::max(peak_inflight_, st.peak_inflight);
  bubble_s_.push_back(st.bubble_s);
  span_s_.push_back(st.span_s);
  ++steps_;
  counters_ = grid_.dp().counters();
  counters_ += grid_.pp().counters();
  if (ep_.ep) {
    counters_ += ep_.ep->counters();
    counters_ += ep_.edp->counters();
  }
  if (embedding_) counters_ += embedding_->counters();
  if (tp_) counters_ += tp_->comm->counters();
  return rec;
}

template <class T>
std::string PipelineTrainer<T>::describe() const {
  const auto shape = grid_.grid().shape();
  const auto& s = opts_.schedule;
  std::int64_t numel = 0;
  for (const auto& c : chunks_) numel += c->params().numel();
  return "pp " + std::to_string(shape.pp) + " x dp " + std::to_string(shape.dp) + " x tp " + std::to_string(shape.tp) +
         (ep_.ep ? " (ep " + std::to_string(ep_.ep->size()) + ": " + std::to_string(experts_ / ep_.ep->size()) +
                       " of " + std::to_string(experts_) + " experts per MoE block here)"
                 : std::string()) +
         ", schedule " + name(s.kind) + " (m=" + std::to_string(s.m) + ", v=" + std::to_string(s.v) + ")" +
         (opts_.recompute ? ", recompute" : "") + ", partition " + opts_.partition + " [" + layout_ + "], " +
         std::to_string(numel) + " parameters on this rank, " + std::to_string(mb_samples_) + " samples per microbatch" +
         (is_half_v<T> ? ", " + precision_name<T>() + " gradients reduced in " +
                             (wide_grads() ? std::string("fp32") : precision_name<T>()) + ", fp32 master weights"
                       : std::string());
}

template <class T>
std::vector<io::NamedTensor> PipelineTrainer<T>::gather_full(bool grads) {
  std::vector<io::NamedTensor> mine;
  for (std::size_t j = 0; j < chunks_.size(); ++j) {
    const auto& c = chunks_[j];
    const auto& mp = *mixed_[j];
    std::vector<io::NamedTensor> ts;
    // A 16-bit run shows its master weights, and its gradients divided by the loss scale (what the update applies).
    auto add = [&](auto&& gathered, double factor) {
      for (auto& [info, v] : gathered) {
        for (auto& x : v) x *= factor;
        ts.push_back({info.name, info.shape, std::move(v)});
      }
    };
    if constexpr (is_half_v<T>) {
      const double inv = 1.0 / mp.loss_scale();
      if (tp_ && !grads) add(gather_full_values(c->params(), *tp_, mp.master()), 1.0);
      else if (tp_ && wide_grads()) add(gather_full_values(c->params(), *tp_, reducers_[j]->fp32_grads()), inv);
      else if (tp_) add(gather_full_values(c->params(), *tp_, c->params().grads()), inv);
      else if (wide_grads()) ts = precision_tensors(mp, c->params(), grads, reducers_[j]->fp32_grads());
      else ts = precision_tensors(mp, c->params(), grads, c->params().grads());
    } else if (tp_) {
      add(parallel::gather_full(c->params(), *tp_, grads), 1.0);
    } else {
      ts = io::named_tensors(c->params(), grads);
    }
    for (auto& t : ts)  // a tied copy equals the first stage's tensor: keep that one
      if (std::find(c->tied_copies().begin(), c->tied_copies().end(), t.name) == c->tied_copies().end())
        mine.push_back(std::move(t));
  }
  if (ep_.ep) mine = gather_experts(std::move(mine), *ep_.ep, experts_, expert_first_);  // the first group: all
  const auto co = grid_.coord();
  if (co.dp != 0 || co.tp != 0) return mine;  // replicas and tensor-parallel peers hold the same
  return io::gather_named_tensors(grid_.pp().comm(), mine, 0);
}

template <class T>
double PipelineTrainer<T>::measure_pure_comm(int reps) {
  // The step's bucket allreduces of every chunk alone, together as in a step: median of `reps` after a warm-up.
  std::vector<GradientReducer<T>*> rs;
  for (auto& r : reducers_) rs.push_back(r.get());
  std::vector<double> times;
  for (int i = 0; i <= reps; ++i) {
    coll::barrier(grid_.dp().comm());
    for (auto* r : rs) r->begin_step();
    const double t = GradientReducer<T>::finish_all(rs);
    if (i > 0) times.push_back(t);
  }
  std::sort(times.begin(), times.end());
  pure_s_ = times.empty() ? 0.0 : times[times.size() / 2];
  return pure_s_;
}

template <class T>
std::vector<std::pair<std::string, bool>> PipelineTrainer<T>::self_check() {
  double sum = 0, tied = 0, experts = 0;  // the experts: equal over the ranks holding them
  for (const auto& c : chunks_) {
    auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), c->params().params());
    for (const auto& p : c->params().infos())
      for (std::int64_t i = p.offset; i < p.offset + p.size; ++i)
        (models::is_expert_parameter(p.name) ? experts : sum) += double(hp.data()[i]) * double(i % 13 + 1);
    for (const auto& name : c->holds_first() ? c->tied_parameters() : c->tied_copies()) {
      auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), c->params().flat_param(name));
      for (std::size_t i = 0; i < h.size(); ++i) tied += double(h.data()[i]) * double(i % 7 + 1);
    }
  }
  const auto replicas = coll::over_ranks(grid_.dp().comm(), sum);
  bool tied_equal = true;
  if (embedding_) {
    const auto t = coll::over_ranks(embedding_->comm(), tied);
    tied_equal = t[0] == t[2];
  }
  double ok = tied_equal ? 1.0 : 0.0, all = 0;
  coll::allreduce(&ok, &all, 1, MPI_DOUBLE, MPI_MIN, grid_.world().comm());
  std::vector<std::pair<std::string, bool>> out = {{"replicas identical", replicas[0] == replicas[2]},
                                                    {"tied copies identical", all == 1.0}};
  if (ep_.edp) {
    const auto e = coll::over_ranks(ep_.edp->comm(), experts);
    double mine = e[0] == e[2] ? 1.0 : 0.0, every = 0;
    coll::allreduce(&mine, &every, 1, MPI_DOUBLE, MPI_MIN, grid_.world().comm());
    out.push_back({"expert replicas identical", every == 1.0});
  }
  return out;
}

template <class T>
std::vector<std::string> PipelineTrainer<T>::exposed_comm_phases() const {
  std::vector<std::string> p = {"comm_exposed", "embedding_sync", "p2p"};
  if (tp_) p.push_back("tp_comm");
  if (exchange_) p.push_back("alltoall");
  return p;
}

template <class T>
std::string PipelineTrainer<T>::step_note(const StepRecord& rec) const {
  char buf[128];
  std::snprintf(buf, sizeof buf, "bubble %4.1f%% | dp exposed %4.1f%%",
                100.0 * phase_of(rec, "bubble") / std::max(phase_of(rec, "pipeline"), 1e-30),
                100.0 * phase_of(rec, "comm_exposed") / rec.time_s);
  const std::string scale = log_.step_note();
  return scale.empty() ? std::string(buf) : std::string(buf) + " | " + scale;
}

template <class T>
NamedFigures PipelineTrainer<T>::summary(const RunMedians& m) {
  const auto& s = opts_.schedule;
  const auto pure = coll::over_ranks(grid_.world().comm(), pure_s_);
  const double exposed = m.phase("comm_exposed");
  // Predicted point-to-point bytes one rank sends per step: every microbatch's output of a chunk that is not the last,
  // and input gradient of a chunk that is not the first.
  double p2p = 0;
  for (const auto& c : chunks_) {
    if (!c->holds_last()) p2p += double(c->out_rows() * c->out_width());
    if (!c->holds_first()) p2p += double(c->in_rows() * c->in_width());
  }
  p2p *= double(s.m) * double(sizeof(T));
  // The pipeline's idle share, as the formula and the simulator count it: Σ over ranks of the time waiting on a
  // neighbour over Σ of the time the schedule took (per-rank medians over the timed steps).
  const auto timed = [&](const std::vector<double>& v) {
    const auto skip = std::size_t(std::max<std::int64_t>(0, m.steps - m.timed_steps));
    std::vector<double> t(v.begin() + std::ptrdiff_t(std::min(skip, v.size())), v.end());
    std::sort(t.begin(), t.end());
    return t.empty() ? 0.0 : t.size() % 2 ? t[t.size() / 2] : 0.5 * (t[t.size() / 2 - 1] + t[t.size() / 2]);
  };
  double mine[2] = {timed(bubble_s_), timed(span_s_)}, sums[2] = {0, 0};
  coll::allreduce(mine, sums, 2, MPI_DOUBLE, MPI_SUM, grid_.world().comm());
  my_bubble_fraction_ = mine[1] > 0 ? mine[0] / mine[1] : 0.0;
  NamedFigures f = {
      {"bubble_fraction", sums[1] > 0 ? sums[0] / sums[1] : 0.0},
      {"predicted_bubble_fraction", predicted_bubble_fraction(s)},
      {"pipeline_s", m.phase("pipeline")},
      {"stages", double(s.p)},
      {"microbatches", double(s.m)},
      {"chunks", double(s.v)},
      {"comm_pure_s", pure[1]},
      {"comm_exposed_s", exposed},
      {"overlap_pct", pure[1] > 0 ? std::clamp(100.0 * (1.0 - exposed / pure[1]), 0.0, 100.0) : 0.0},
      {"p2p_bytes_sent_per_step", steps_ ? double(counters_[coll::Op::SendRecv].bytes_sent) / double(steps_) : 0.0},
      {"predicted_p2p_bytes_sent_per_step", p2p},
      {"embedding_sync_s", m.phase("embedding_sync")}};
  for (const auto& x : log_.summary(scaler_)) f.push_back(x);
  if (tp_) {
    f.push_back({"tp_comm_s", m.phase("tp_comm")});
    f.push_back({"tp_comm_share", m.phase("tp_comm") / m.step_time_s});
  }
  return f;
}

template <class T>
std::vector<io::ExtraDataset> PipelineTrainer<T>::datasets() {
  MPI_Comm world = grid_.world().comm();
  const auto sim = simulate(opts_.schedule);
  std::vector<io::ExtraDataset> out = log_.datasets();
  auto per_rank = [&](const std::string& path, double v, io::Meta meta) {
    auto all = gather0(world, v);
    out.push_back({path, {hsize_t(all.size())}, all, std::move(meta)});
  };
  per_rank("/pipeline/stage", stage_, {"1", "pipeline stage of every rank"});
  per_rank("/pipeline/bubble_fraction", my_bubble_fraction_,
           {"1", "every rank's time waiting on a neighbour over the time its schedule took (medians over the timed steps)"});
  per_rank("/pipeline/peak_inflight", peak_inflight_, {"1", "most microbatch-chunks holding activations at once, every rank"});
  per_rank("/pipeline/predicted_peak_inflight", sim.peak_inflight[std::size_t(stage_)],
           {"1", "the same from the schedule's simulation (gpipe: m; 1f1b: p - stage; zb: p; interleaved: Megatron's warm-up + 1)"});
  // The timeline: every compute action of every step on every rank.
  std::vector<double> mine;
  for (std::size_t i = 0; i < timeline_.size(); ++i) {
    const auto& e = timeline_[i];
    mine.insert(mine.end(), {double(grid_.world().rank()), double(timeline_steps_[i]), double(int(e.type)),
                             double(e.mb), double(e.chunk * opts_.schedule.p + stage_), e.start_s, e.end_s});
  }
  int count = int(mine.size()), n = grid_.world().size(), rank = grid_.world().rank();
  std::vector<int> counts(static_cast<std::size_t>(n)), displs(static_cast<std::size_t>(n));
  MPI_Request req;
  PARTRAIN_MPI_CHECK(MPI_Igather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, world, &req));
  coll::wait(req);
  std::vector<double> all;
  if (rank == 0) {
    for (int r = 1; r < n; ++r) displs[std::size_t(r)] = displs[std::size_t(r) - 1] + counts[std::size_t(r) - 1];
    all.resize(std::size_t(displs.back() + counts.back()));
  }
  PARTRAIN_MPI_CHECK(MPI_Igatherv(mine.data(), count, MPI_DOUBLE, all.data(), counts.data(), displs.data(), MPI_DOUBLE,
                                  0, world, &req));
  coll::wait(req);
  const std::size_t N = all.size() / 7;
  const char* names[] = {"rank", "step", "action", "microbatch", "model_chunk", "start_s", "end_s"};
  const io::Meta metas[] = {{"1", "rank that ran the action"},
                            {"1", "training step"},
                            {"1", "0 = F (forward), 1 = B (backward, or its input-gradient half under zb), 2 = W (weight-gradient half)"},
                            {"1", "microbatch"},
                            {"1", "model chunk (0 .. p*v-1; stage = model_chunk mod p)"},
                            {"s", "start, from the start of the step on that rank (after its pre-step barrier)"},
                            {"s", "end, from the start of the step"}};
  for (int k = 0; k < 7; ++k) {
    std::vector<double> col(N);
    for (std::size_t i = 0; i < N; ++i) col[i] = all[i * 7 + std::size_t(k)];
    out.push_back({std::string("/timeline/") + names[k], {hsize_t(N)}, col, metas[k]});
  }
  return out;
}

template <class T>
NamedStrings PipelineTrainer<T>::attributes() const {
  const auto& s = opts_.schedule;
  const std::string variant = std::string(name(s.kind)) + " m=" + std::to_string(s.m) +
                              (s.v > 1 ? " v=" + std::to_string(s.v) : "") + (opts_.recompute ? " recompute" : "");
  return {{"variant", variant},
          {"schedule", name(opts_.schedule.kind)},
          {"pipeline_partition", opts_.partition},
          {"pipeline_layout", layout_},
          {"recompute", opts_.recompute ? "true" : "false"},
          {"algorithm", coll::name(opts_.dp.algo)},
          {"overlap", opts_.dp.overlap ? "true" : "false"}};
}

template <class T>
std::array<double, 3> PipelineTrainer<T>::predicted_state_bytes() const {
  std::int64_t numel = 0;
  double opt = 0;
  for (std::size_t j = 0; j < chunks_.size(); ++j) {
    numel += chunks_[j]->params().numel();
    opt += double(optimizers_[j]->state_bytes());
  }
  return model_state_bytes<T>(numel, opt, wide_grads() ? double(numel) * 4.0 : 0.0);
}

template <class T>
std::vector<io::TensorPart> PipelineTrainer<T>::state_parts(bool writer) {
  if (!state_) {
    // The first replica writes; in a tensor-parallel group its first rank writes the tensors every rank holds; the
    // tied copy on the last stage is read but not written (the first stage writes the tensor).
    state_ = std::make_unique<StateIo<master_t<T>>>();
    // With expert parallelism each expert is written by the first rank holding it (the first expert group).
    const bool first_replica = grid_.dp().rank() == 0, first_of_group = !tp_ || tp_->rank() == 0;
    const bool first_holder = ep_.edp ? ep_.edp->rank() == 0 : first_replica;
    for (std::size_t c = 0; c < chunks_.size(); ++c) {
      const auto& ps = chunks_[c]->params();
      const auto& copies = chunks_[c]->tied_copies();
      auto keep = [&ps, &copies, first_of_group, first_replica, first_holder](const std::string& name) {
        if (std::find(copies.begin(), copies.end(), name) != copies.end()) return false;
        if (!(models::is_expert_parameter(name) ? first_holder : first_replica)) return false;
        return ps.info(name).shard.sharded() || first_of_group;
      };
      auto& opt = *optimizers_[c];
      const bool write = first_replica || first_holder;
      state_->add("params", ps, checkpoint_params(*mixed_[c], ps), write, 0, 1, keep);
      if (opt.m().size()) state_->add("optim/m", ps, opt.m(), write, 0, 1, keep);
      if (opt.v().size()) state_->add("optim/v", ps, opt.v(), write, 0, 1, keep);
    }
  }
  return state_->parts(writer);
}

template <class T>
void PipelineTrainer<T>::restore_state(const std::vector<io::TensorPart>& parts, std::int64_t steps) {
  state_parts(false);
  state_->restore(parts);
  for (std::size_t j = 0; j < chunks_.size(); ++j) mixed_[j]->refresh_params(chunks_[j]->params());
  for (auto& o : optimizers_) o->set_steps(steps);
}

template class PipelineTrainer<float>;
template class PipelineTrainer<double>;
template class PipelineTrainer<bf16>;
template class PipelineTrainer<fp16>;

}  // namespace partrain::parallel::pipeline
