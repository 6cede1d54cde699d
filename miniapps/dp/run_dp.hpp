// The body of partrain-dp for one element type: build, train, report, write results.
#pragma once

#include <cmath>
#include <cstdio>

#include "dp_config.hpp"
#include "partrain/collectives/wait.hpp"
#include "partrain/core/cli.hpp"
#include "partrain/core/log.hpp"
#include "partrain/core/memory.hpp"
#include "partrain/core/runtime.hpp"
#include "partrain/io/result_writer.hpp"
#include "partrain/io/state_dump.hpp"

namespace partrain::dp_app {

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

template <class T>
int run(const Deck& deck, const CommonOptions& opts, const Config& cfg, const io::Provenance& prov) {
  coll::MpiCommunicator comm(MPI_COMM_WORLD);
  const int n = comm.size(), rank = comm.rank();
  auto model = models::make_model<T>(cfg.model);
  auto data = models::make_dataset<T>(cfg.model);
  parallel::DataParallelTrainer<T> trainer(*model, *data, cfg.train, comm, cfg.dp);
  const bool gpt = cfg.model.kind == "gpt";
  const std::int64_t rows_global = cfg.train.global_batch * models::rows_per_sample(cfg.model);
  const double flops_per_step = 3.0 * model->forward_flops(cfg.train.global_batch);
  log0("# model " + models::describe(cfg.model) + ": " + std::to_string(model->params().numel()) + " parameters (" +
       format_bytes(double(model->params().numel() * std::int64_t(sizeof(T)))) + "), " +
       std::to_string(trainer.buckets().buckets().size()) + " buckets, algorithm " + coll::name(cfg.dp.algo) +
       ", overlap " + (cfg.dp.overlap ? "on" : "off") + ", " + std::to_string(trainer.local_samples()) +
       " samples per rank, wait " + coll::wait_policy_name(coll::wait_policy()));
  log0("# BLAS: " + blas_info());

  io::RankRecord rec;
  std::vector<double> losses;
  std::vector<double> fwd, bwd, exposed, optim, span;
  ProgressLine progress(int(cfg.train.steps), gpt ? "tok" : "samples");
  auto dump = [&](std::int64_t step, double loss) {
    if (rank != 0) return;  // parameters and reduced gradients are replicated; the global batch is regenerated
    auto global = data->allocate(cfg.train.global_batch);
    data->fill(std::uint64_t(step), 0, global);
    io::write_state_dump(io::StateDumpInfo{opts.dump_state, opts.overwrite, models::describe(cfg.model), deck.to_toml()},
                         model->params(), global, models::rows_per_sample(cfg.model), loss);
  };
  for (std::int64_t s = 0; s < cfg.train.steps; ++s) {
    const bool last = s + 1 == cfg.train.steps;
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
    const auto t = over_ranks(comm.comm(), r.time_s);
    const double per_s = double(gpt ? rows_global : cfg.train.global_batch) / t[1];
    char extra[64];
    std::snprintf(extra, sizeof extra, "exposed comm %4.1f%%", 100.0 * r.comm_exposed_s / r.time_s);
    log0(progress.format(int(s + 1), r.loss, t[1], per_s, extra));
  }
  const coll::Counters train_counters = comm.counters();  // before the communication-only replay
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
  const auto cs = over_ranks(comm.comm(), checksum);
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
  std::snprintf(line, sizeof line, "FOM partrain-dp %s ranks=%d step_time_median_ms=%.3f %s_per_s=%.1f exposed_comm_pct=%.1f",
                models::describe(cfg.model).c_str(), n, step_t[1] * 1e3, gpt ? "tokens" : "samples", throughput,
                100.0 * exp_t[1] / step_t[1]);
  log0(line);

  if (!opts.output.empty()) {
    rec.phases["forward"] = fwd;
    rec.phases["backward"] = bwd;
    rec.phases["comm_exposed"] = exposed;
    rec.phases["optimizer"] = optim;
    rec.phases["comm"] = span;
    rec.memory = memory_snapshot();
    rec.rss_peak_bytes = peak_rss_bytes();
    rec.comm = train_counters;
    io::RunInfo info;
    info.path = opts.output;
    info.overwrite = opts.overwrite;
    info.app = "partrain-dp";
    info.strategy = "dp";
    info.model = models::describe(cfg.model);
    info.config_toml = deck.to_toml();
    info.dp = n;
    info.warmup_steps = cfg.train.warmup;
    info.loss = losses;
    info.attrs = {{"algorithm", coll::name(cfg.dp.algo)},
                  {"overlap", cfg.dp.overlap ? "true" : "false"},
                  {"dtype", cfg.model.dtype},
                  {"wait_policy", coll::wait_policy_name(coll::wait_policy())}};
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
                    {"predicted_allreduce_bytes_sent_per_step", double(trainer.predicted_ring_bytes_per_step())},
                    {"params_bytes", double(mem.peak[0])},
                    {"predicted_params_bytes", double(model->params().numel() * std::int64_t(sizeof(T)))},
                    {"grads_bytes", double(mem.peak[1])},
                    {"predicted_grads_bytes", double(model->params().numel() * std::int64_t(sizeof(T)))},
                    {"optimizer_bytes", double(mem.peak[2])},
                    {"predicted_optimizer_bytes", double(trainer.optimizer().state_bytes())}};
    io::write_result(comm.comm(), prov, info, rec);
    log0("# result written to " + opts.output);
  }
  return finite && replicas_equal ? 0 : 1;
}

}  // namespace partrain::dp_app
