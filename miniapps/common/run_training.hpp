// The body shared by the data- and tensor-parallel mini-apps, for one element type: train with the
// DataParallelTrainer (over the data-parallel group; tensor parallelism lives inside the model's layers), print
// one line per step, self-check, figure of merit, state dump and result file.
#pragma once

#include <cmath>
#include <cstdio>

#include "partrain/collectives/mpi_communicator.hpp"
#include "partrain/core/config.hpp"
#include "partrain/models/model_config.hpp"
#include "partrain/parallel/data_parallel.hpp"
#include "partrain/parallel/tp_gpt.hpp"
#include "partrain/collectives/wait.hpp"
#include "partrain/core/cli.hpp"
#include "partrain/core/log.hpp"
#include "partrain/core/memory.hpp"
#include "partrain/core/runtime.hpp"
#include "partrain/io/result_writer.hpp"
#include "partrain/io/state_dump.hpp"

namespace partrain::app {

/// min, median, max over the ranks of `comm` of one value (every rank gets them).
inline std::array<double, 3> over_ranks(MPI_Comm comm, double v) {
  int n = 1;
  MPI_Comm_size(comm, &n);
  std::vector<double> all(static_cast<std::size_t>(n));
  MPI_Request req;
  MPI_Iallgather(&v, 1, MPI_DOUBLE, all.data(), 1, MPI_DOUBLE, comm, &req);
  coll::wait(req);
  std::sort(all.begin(), all.end());
  return {all.front(), io::median(all), all.back()};
}

/// What a data-/tensor-parallel run is made of (the model is built by the caller).
struct RunSetup {
  std::string app, strategy;
  const Deck* deck = nullptr;
  const CommonOptions* opts = nullptr;
  models::ModelSpec model;
  models::TrainSpec train;
  parallel::DpOptions dp;
  int pure_comm_reps = 5;
  coll::MpiCommunicator* world = nullptr;
  coll::MpiCommunicator* dp_comm = nullptr;
  parallel::TpContext* tp = nullptr;  ///< set for tensor-parallel models
  std::vector<std::pair<std::string, std::string>> attrs;
};

template <class T>
int run_training(const RunSetup& su, models::Model<T>& model_ref, const io::Provenance& prov) {
  const Deck& deck = *su.deck;
  const CommonOptions& opts = *su.opts;
  coll::MpiCommunicator& comm = *su.world;
  struct {
    models::ModelSpec model;
    models::TrainSpec train;
    parallel::DpOptions dp;
    int pure_comm_reps;
  } cfg{su.model, su.train, su.dp, su.pure_comm_reps};
  const int n = comm.size(), rank = comm.rank();
  const int tp_size = su.tp ? su.tp->size() : 1;
  models::Model<T>* model = &model_ref;
  auto data = models::make_dataset<T>(cfg.model);
  parallel::DataParallelTrainer<T> trainer(*model, *data, cfg.train, *su.dp_comm, cfg.dp);
  const bool gpt = cfg.model.kind == "gpt";
  const std::int64_t rows_global = cfg.train.global_batch * models::rows_per_sample(cfg.model);
  const double flops_per_step = 3.0 * model->forward_flops(cfg.train.global_batch);
  const auto bucket_algo = su.dp_comm->resolve(coll::Op::Allreduce, cfg.dp.algo, std::int64_t(cfg.dp.bucket_mib * 1048576));
  log0("# model " + models::describe(cfg.model) + ", dp " + std::to_string(su.dp_comm->size()) + " x tp " +
       std::to_string(tp_size) + (su.tp && su.tp->sequence_parallel ? " (sequence parallel)" : "") + ": " +
       std::to_string(model->params().numel()) + " parameters per rank (" +
       format_bytes(double(model->params().numel() * std::int64_t(sizeof(T)))) + "), " +
       std::to_string(trainer.buckets().buckets().size()) + " buckets, algorithm " + coll::name(cfg.dp.algo) +
       (cfg.dp.algo == coll::Algo::Auto ? std::string(" (") + coll::name(bucket_algo) + ")" : std::string()) +
       ", overlap " + (cfg.dp.overlap ? "on" : "off") + ", " + std::to_string(trainer.local_samples()) +
       " samples per rank, wait " + coll::wait_policy_name(coll::wait_policy()));
  log0("# BLAS: " + blas_info());

  io::RankRecord rec;
  std::vector<double> losses;
  std::vector<double> fwd, bwd, exposed, optim, span, tp_comm;
  ProgressLine progress(int(cfg.train.steps), gpt ? "tok" : "samples");
  auto dump = [&](std::int64_t step, double loss) {
    // Parameters and reduced gradients are replicated over the data-parallel group; tensor-parallel shards are
    // gathered (collectively) into whole tensors; the global batch is regenerated from its keys.
    std::vector<io::NamedTensor> params, grads;
    if (su.tp) {
      for (auto& [info, v] : parallel::gather_full(model->params(), *su.tp, false)) params.push_back({info.name, info.shape, v});
      for (auto& [info, v] : parallel::gather_full(model->params(), *su.tp, true)) grads.push_back({info.name, info.shape, v});
    }
    if (rank != 0) return;
    auto global = data->allocate(cfg.train.global_batch);
    data->fill(std::uint64_t(step), 0, global);
    const io::StateDumpInfo info{opts.dump_state, opts.overwrite, models::describe(cfg.model), deck.to_toml()};
    if (su.tp) io::write_state_dump(info, params, grads, global, models::rows_per_sample(cfg.model), loss);
    else io::write_state_dump(info, model->params(), global, models::rows_per_sample(cfg.model), loss);
  };
  for (std::int64_t s = 0; s < cfg.train.steps; ++s) {
    const bool last = s + 1 == cfg.train.steps;
    const double tp_comm0 = su.tp ? su.tp->comm_s : 0.0;
    const auto r = trainer.step(s, last && !opts.dump_state.empty()
                                       ? typename parallel::DataParallelTrainer<T>::BeforeUpdate(
                                             [&](double loss) { dump(s, loss); })
                                       : nullptr);
    losses.push_back(r.loss);
    rec.time_s.push_back(r.time_s);
    fwd.push_back(r.forward_s);
    bwd.push_back(r.backward_s);
    exposed.push_back(r.comm_exposed_s);
    optim.push_back(r.optimizer_s);
    span.push_back(r.comm_span_s);
    tp_comm.push_back(su.tp ? su.tp->comm_s - tp_comm0 : 0.0);
    const auto t = over_ranks(comm.comm(), r.time_s);
    const double per_s = double(gpt ? rows_global : cfg.train.global_batch) / t[1];
    char extra[96];
    if (su.tp)
      std::snprintf(extra, sizeof extra, "tp comm %4.1f%% | dp exposed %4.1f%%", 100.0 * tp_comm.back() / r.time_s,
                    100.0 * r.comm_exposed_s / r.time_s);
    else
      std::snprintf(extra, sizeof extra, "exposed comm %4.1f%%", 100.0 * r.comm_exposed_s / r.time_s);
    log0(progress.format(int(s + 1), r.loss, t[1], per_s, extra));
  }
  const coll::Counters train_counters = su.dp_comm->counters();  // before the communication-only replay
  const coll::Counters tp_counters = su.tp ? su.tp->comm->counters() : coll::Counters{};
  const std::int64_t tp_block_bytes = su.tp ? su.tp->block_bytes_sent : 0;
  const auto pure = over_ranks(comm.comm(), trainer.measure_pure_comm(cfg.pure_comm_reps));

  // Summary over the timed steps: per-rank medians, then min/median/max over ranks.
  auto timed = [&](const std::vector<double>& v) {
    return std::vector<double>(v.begin() + std::min<std::int64_t>(cfg.train.warmup, std::int64_t(v.size())), v.end());
  };
  const auto step_t = over_ranks(comm.comm(), io::median(timed(rec.time_s)));
  const auto exp_t = over_ranks(comm.comm(), io::median(timed(exposed)));
  const double overlap_pct = pure[1] > 0 ? std::clamp(100.0 * (1.0 - exp_t[1] / pure[1]), 0.0, 100.0) : 0.0;

  // Self-check: finite losses, replicas bit-identical (checksum of the parameters equal on every rank).
  bool finite = true;
  for (double l : losses) finite = finite && std::isfinite(l);
  auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model->params().params());
  double checksum = 0;
  for (std::size_t i = 0; i < hp.size(); ++i) checksum += double(hp.data()[i]) * double(i % 13 + 1);
  const auto cs = over_ranks(su.dp_comm->comm(), checksum);
  const bool replicas_equal = cs[0] == cs[2];
  const auto mem = memory_snapshot();
  char line[512];
  std::snprintf(line, sizeof line,
                "# step time %.2f / %.2f / %.2f ms (min/median/max over ranks); comm alone (t_pure) %.2f ms, exposed "
                "%.2f ms, overlap %.0f%%",
                step_t[0] * 1e3, step_t[1] * 1e3, step_t[2] * 1e3, pure[1] * 1e3, exp_t[1] * 1e3, overlap_pct);
  log0(line);
  log0("# memory peak per rank: params " + format_bytes(double(mem.peak[0])) + ", grads " +
       format_bytes(double(mem.peak[1])) + ", optimizer " + format_bytes(double(mem.peak[2])) + ", activations " +
       format_bytes(double(mem.peak[3])) + ", comm buffers " + format_bytes(double(mem.peak[4])) + ", rss " +
       format_bytes(double(peak_rss_bytes())));
  std::snprintf(line, sizeof line, "# self-check: %s (losses finite: %s; replicas identical: %s; loss %.4f -> %.4f)",
                finite && replicas_equal ? "PASS" : "FAIL", finite ? "yes" : "no", replicas_equal ? "yes" : "no",
                losses.front(), losses.back());
  log0(line);
  const double throughput = double(gpt ? rows_global : cfg.train.global_batch) / step_t[1];
  const auto tp_t = over_ranks(comm.comm(), io::median(timed(tp_comm)));
  if (su.tp) {
    std::snprintf(line, sizeof line, "# tensor-parallel communication %.2f ms per step (%.1f%% of the step)",
                  tp_t[1] * 1e3, 100.0 * tp_t[1] / step_t[1]);
    log0(line);
  }
  std::snprintf(line, sizeof line, "FOM %s %s ranks=%d dp=%d tp=%d step_time_median_ms=%.3f %s_per_s=%.1f comm_pct=%.1f",
                su.app.c_str(), models::describe(cfg.model).c_str(), n, su.dp_comm->size(), tp_size, step_t[1] * 1e3,
                gpt ? "tokens" : "samples", throughput, 100.0 * (exp_t[1] + tp_t[1]) / step_t[1]);
  log0(line);

  if (!opts.output.empty()) {
    rec.phases["forward"] = fwd;
    rec.phases["backward"] = bwd;
    rec.phases["comm_exposed"] = exposed;
    rec.phases["optimizer"] = optim;
    rec.phases["comm"] = span;
    if (su.tp) rec.phases["tp_comm"] = tp_comm;
    rec.memory = memory_snapshot();
    rec.rss_peak_bytes = peak_rss_bytes();
    rec.comm = train_counters;
    if (su.tp)  // the tensor-parallel group's traffic is reported with the data-parallel group's, op by op
      for (int op = 0; op < coll::kNumOps; ++op) {
        auto& c = rec.comm[coll::Op(op)];
        const auto& t = tp_counters[coll::Op(op)];
        c.bytes_sent += t.bytes_sent;
        c.bytes_received += t.bytes_received;
        c.calls += t.calls;
      }
    io::RunInfo info;
    info.path = opts.output;
    info.overwrite = opts.overwrite;
    info.app = su.app;
    info.strategy = su.strategy;
    info.model = models::describe(cfg.model);
    info.config_toml = deck.to_toml();
    info.dp = su.dp_comm->size();
    info.tp = tp_size;
    info.warmup_steps = cfg.train.warmup;
    info.loss = losses;
    info.attrs = {{"algorithm", coll::name(cfg.dp.algo)},
                  {"algorithm_resolved", coll::name(bucket_algo)},
                  {"overlap", cfg.dp.overlap ? "true" : "false"},
                  {"dtype", cfg.model.dtype},
                  {"wait_policy", coll::wait_policy_name(coll::wait_policy())}};
    info.attrs.insert(info.attrs.end(), su.attrs.begin(), su.attrs.end());
    info.summary = {{"step_time_median_s", step_t[1]},
                    {"step_time_min_s", step_t[0]},
                    {"step_time_max_s", step_t[2]},
                    {"samples_per_s", double(cfg.train.global_batch) / step_t[1]},
                    {"tokens_per_s", gpt ? double(rows_global) / step_t[1] : 0.0},
                    {"flops_per_step", flops_per_step},
                    {"flops_per_s", flops_per_step / step_t[1]},
                    {"comm_pure_s", pure[1]},
                    {"comm_exposed_s", exp_t[1]},
                    {"overlap_pct", overlap_pct},
                    {"buckets", double(trainer.buckets().buckets().size())},
                    {"allreduce_bytes_sent_per_step",
                     double(train_counters[coll::Op::Allreduce].bytes_sent) / double(cfg.train.steps)},
                    {"predicted_allreduce_bytes_sent_per_step", double(trainer.predicted_bytes_per_step())},
                    {"params_bytes", double(mem.peak[0])},
                    {"predicted_params_bytes", double(model->params().numel() * std::int64_t(sizeof(T)))},
                    {"grads_bytes", double(mem.peak[1])},
                    {"predicted_grads_bytes", double(model->params().numel() * std::int64_t(sizeof(T)))},
                    {"optimizer_bytes", double(mem.peak[2])},
                    {"predicted_optimizer_bytes", double(trainer.optimizer().state_bytes())}};
    if (su.tp) {
      const double b = double(trainer.local_samples()), sq = double(cfg.model.gpt.seq_len),
                   h = double(cfg.model.gpt.channels), t = double(tp_size);
      info.summary.push_back({"tp_comm_s", tp_t[1]});
      info.summary.push_back({"tp_comm_share", tp_t[1] / step_t[1]});
      info.summary.push_back({"tp_block_bytes_sent_per_layer_per_microbatch",
                              double(tp_block_bytes) / double(cfg.train.steps) / double(cfg.model.gpt.layers)});
      info.summary.push_back({"predicted_tp_block_bytes_sent_per_layer_per_microbatch",
                              8.0 * b * sq * h * (t - 1) / t * double(sizeof(T))});
    }
    io::write_result(comm.comm(), prov, info, rec);
    log0("# result written to " + opts.output);
  }
  return finite && replicas_equal ? 0 : 1;
}

}  // namespace partrain::app
