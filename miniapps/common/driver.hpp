// The driver every mini-app runs (DESIGN.md, "One driver, many trainers"): any parallel::Trainer, stepped
// train.steps times with one progress line per step (rank 0), then the summary: step time min/median/max over ranks
// (per-rank median over the timed steps first), t_pure, memory by category, a self-check, the figure-of-merit line,
// --dump-state (gathered whole tensors + the regenerated global batch) and the HDF5 result file.
#pragma once

#include <cmath>
#include <cstdio>
#include <map>
#include <optional>

#include "partrain/collectives/wait.hpp"
#include "partrain/core/cli.hpp"
#include "partrain/core/config.hpp"
#include "partrain/core/log.hpp"
#include "partrain/core/memory.hpp"
#include "partrain/core/runtime.hpp"
#include "partrain/core/timer.hpp"
#include "partrain/io/h5.hpp"
#include "partrain/io/result_writer.hpp"
#include "partrain/io/state_dump.hpp"
#include "partrain/models/model_config.hpp"
#include "partrain/parallel/trainer.hpp"
#include "partrain/perf/inputs.hpp"
#include "run_controls.hpp"

namespace partrain::app {

/// What a run is, besides the trainer.
struct DriverSetup {
  std::string app, strategy;
  const Deck* deck = nullptr;
  const CommonOptions* opts = nullptr;
  models::ModelSpec model;
  models::TrainSpec train;
  int dp = 1, tp = 1, pp = 1;
  int pure_comm_reps = 0;  ///< repetitions of the communication-only replay (0: none)
  MPI_Comm world = MPI_COMM_WORLD;
  parallel::NamedStrings attrs;  ///< extra root attributes of the result file
  const RunControls* controls = nullptr;  ///< fault injection and the checkpoint to resume from
};

/// Rejects --output / --dump-state paths that cannot be written (InputError naming the flag).
inline void check_outputs(const CommonOptions& opts) {
  if (!opts.output.empty()) io::check_output_path("--output", opts.output, opts.overwrite);
  if (!opts.dump_state.empty()) io::check_output_path("--dump-state", opts.dump_state, opts.overwrite);
}

/// Per step, what each rank waited for the slowest: the largest "busy" time over the ranks (the trainer's own work
/// in the step) less this rank's. The collectives make every rank pay the slowest rank's step; this is how much of
/// this rank's step that was (inside its exposed communication, or a pipeline's bubble). NaN where the trainer does
/// not say what its busy time was. Collective over `world`.
inline double wait_for_others(MPI_Comm world, const parallel::StepRecord& r) {
  double busy = std::nan(""), slowest = 0;
  for (const auto& [name, v] : r.phases)
    if (name == "busy") busy = v;
  const double mine = std::isnan(busy) ? -1.0 : busy;
  coll::allreduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, world);
  return std::isnan(busy) ? std::nan("") : slowest - busy;
}

/// Median of the timed steps (the first `warmup` excluded) of one series; NaN entries (a rank with no such step)
/// are left out, and a series with nothing timed gives NaN (over_ranks leaves the rank out).
inline double timed_median(const std::vector<double>& v, std::int64_t warmup) {
  const auto skip = std::min<std::int64_t>(warmup, std::int64_t(v.size()));
  std::vector<double> t;
  for (auto it = v.begin() + skip; it != v.end(); ++it)
    if (!std::isnan(*it)) t.push_back(*it);
  return t.empty() ? std::nan("") : io::median(t);
}

template <class T>
int run_driver(const DriverSetup& su, parallel::Trainer<T>& trainer, const io::Provenance& prov) {
  const Deck& deck = *su.deck;
  const CommonOptions& opts = *su.opts;
  log0("# threading: " + prov.threading + "; wait policy " + coll::wait_policy_name(coll::wait_policy()));
  int n = 1, rank = 0;
  MPI_Comm_size(su.world, &n);
  MPI_Comm_rank(su.world, &rank);
  const auto& ts = su.train;
  // Token models (GPT, NMT) count tokens: GPT's T per sequence, NMT's mean real target length per sentence.
  const bool gpt = su.model.kind == "gpt" || su.model.kind == "nmt";
  const double tokens_per_sample = models::tokens_per_sample(su.model);
  const double rows_global = double(ts.global_batch) * tokens_per_sample;
  const double work_per_step = gpt ? rows_global : double(ts.global_batch);
  const double flops_per_step = 3.0 * models::forward_flops(su.model, ts.global_batch);
  log0("# model " + models::describe(su.model) + ", " + trainer.describe() + ", wait " +
       coll::wait_policy_name(coll::wait_policy()));
  log0("# BLAS: " + blas_info());
  if (ts.warmup != ts.warmup_requested)
    log0("# note: train.warmup = " + std::to_string(ts.warmup_requested) + " clamped to " + std::to_string(ts.warmup) +
         " so that a step is timed (train.steps = " + std::to_string(ts.steps) + ")");

  std::vector<double> losses, times, walls;  // walls: back to back, the wall clock from one step's end to the next's
  std::map<std::string, std::vector<double>> phases;
  ProgressLine progress(int(ts.steps), gpt ? "tok" : "samples");
  auto data = models::make_dataset<T>(su.model);
  double dump_s = 0;  // the state dump's time, left out of the back-to-back figure
  auto dump = [&](std::int64_t step, double loss) {
    const double d0 = wall_time_s();
    struct Timed {  // on every exit
      double d0, *into;
      ~Timed() { *into += wall_time_s() - d0; }
    } timed{d0, &dump_s};
    const auto params = trainer.gather_full(false), grads = trainer.gather_full(true);  // collective
    if (rank != 0) return;
    auto global = data->allocate(ts.global_batch);
    data->fill(std::uint64_t(step), 0, global);
    const io::StateDumpInfo info{opts.dump_state, opts.overwrite, models::describe(su.model), deck.to_toml()};
    io::write_state_dump(info, params, grads, global, models::rows_per_sample(su.model), loss);
  };
  std::int64_t first_step = 0, stopped_at = -1;
  std::string resumed_from, attempts;
  coll::set_watchdog(opts.timeout_s);
  if (trainer.lockstep()) {
    const RunControls no_controls;
    const RunControls& rc = su.controls ? *su.controls : no_controls;
    const std::string& dir = opts.checkpoint_dir;
    if (!rc.resume_path.empty()) {  // the training state back, collectively, each rank reading its own blocks
      const double t0 = wall_time_s();
      auto parts = trainer.state_parts(false);
      io::CheckpointMeta meta;
      io::read_checkpoint(su.world, rc.resume_path, parts, &meta);
      trainer.restore_state(parts, std::int64_t(meta.numbers["optimizer_steps"]));
      trainer.restore_numbers(meta.numbers);
      first_step = meta.step;
      resumed_from = rc.resume_path;
      attempts = meta.strings["attempts"];
      char line[160];
      std::snprintf(line, sizeof line, "# resumed at step %lld (%.2f s to read)", (long long)first_step, wall_time_s() - t0);
      log0(line);
    }
    attempts += (attempts.empty() ? "" : ",") + attempt_id();
    if (!dir.empty()) {
      if (rank == 0) {
        mkdir(dir.c_str(), 0777);
        if (!opts.resume && opts.overwrite) io::prune_checkpoints(dir, 0);
      }
      coll::barrier(su.world);
    }
    install_stop_handlers();
    const auto tensors = dir.empty() ? std::vector<io::CheckpointTensor>{} : parallel::state_tensors(su.model, ts.optimizer);
    std::int64_t last_written = first_step;  // a resumed run's first state is on disk already
    double checkpoint_s = 0;  // left out of the back-to-back figure (reported on its own line)
    auto write_checkpoint = [&](std::int64_t next) {  // the state after `next` steps
      if (next == last_written) return;
      last_written = next;
      const double t0 = wall_time_s();
      struct Timed {
        double t0, *into;
        ~Timed() { *into += wall_time_s() - t0; }
      } timed{t0, &checkpoint_s};
      io::CheckpointMeta meta;
      meta.step = next;
      meta.model = models::describe(su.model);
      meta.config_toml = deck.to_toml();
      meta.numbers["optimizer_steps"] = double(trainer.optimizer_steps());
      for (const auto& [k, v] : trainer.checkpoint_numbers()) meta.numbers[k] = v;
      meta.strings["app"] = su.app;
      meta.strings["strategy"] = su.strategy;
      meta.strings["optimizer"] = ts.optimizer.kind;
      meta.strings["attempts"] = attempts;
      const std::string path = io::checkpoint_path(dir, next);
      io::write_checkpoint(su.world, path, meta, tensors, trainer.state_parts(true), sizeof(master_t<T>) == 4);
      if (rank == 0) io::prune_checkpoints(dir, opts.keep);
      char line[320];
      std::snprintf(line, sizeof line, "# checkpoint: %s (%.2f s)", path.c_str(), wall_time_s() - t0);
      log0(line);
    };
    // One barrier before the first step; from there the back-to-back clock runs over everything a long run pays
    // between two step ends — each trainer's own barrier at its step's start, the step, the step line's and the stop
    // agreement's small collectives — except checkpoints and the state dump (their own lines).
    coll::barrier(su.world);
    double step_end = wall_time_s();
    for (std::int64_t s = first_step; s < ts.steps; ++s) {
      coll::set_watchdog_step(s + 1);  // as the step lines count
      if (const int sig = stop_requested(su.world)) {  // SIGTERM / SIGUSR1 on some rank: stop here, resumable
        if (!dir.empty()) write_checkpoint(s);
        stopped_at = s;
        log0(std::string("# stopped by ") + (sig == SIGTERM ? "SIGTERM" : "SIGUSR1") + " before step " +
             std::to_string(s + 1) + (dir.empty() ? " (no --checkpoint-dir: nothing to resume from)" : ""));
        break;
      }
      inject_faults(rc.faults, rank, s);
      const bool dump_here = s + 1 == ts.steps && !opts.dump_state.empty();
      auto r = trainer.step(s, dump_here ? typename parallel::Trainer<T>::BeforeUpdate(
                                               [&](double loss) { dump(s, loss); })
                                         : nullptr);
      r.phase("wait_for_others", wait_for_others(su.world, r));
      losses.push_back(r.loss);
      times.push_back(r.time_s);
      for (const auto& [name, v] : r.phases) phases[name].push_back(v);
      const auto t = coll::over_ranks(su.world, r.time_s);
      log0(progress.format(int(s + 1), r.loss, t[1], work_per_step / t[1], trainer.step_note(r)));
      if (opts.checkpoint_every > 0 && (s + 1) % opts.checkpoint_every == 0 && s + 1 < ts.steps) write_checkpoint(s + 1);
      const double now = wall_time_s();
      walls.push_back(now - step_end - checkpoint_s - dump_s);
      step_end = now;
      checkpoint_s = dump_s = 0;
    }
    coll::set_watchdog_step(-1);
    if (losses.empty()) {
      log0("# no step trained: no result file written");
      return stopped_at >= 0 ? kExitStopped : 1;
    }
  } else {
    // Ranks at their own pace (the parameter server): the whole run, then one line per global step with its loss
    // and the median over ranks of each rank's k-th unit of work. Series are padded with NaN to the longest.
    const auto res = trainer.run(ts.steps, opts.dump_state.empty() ? typename parallel::Trainer<T>::BeforeUpdate()
                                                                   : [&](double loss) { dump(ts.steps - 1, loss); });
    first_step = res.first_step;
    losses = res.loss;
    long long units = (long long)res.mine.size(), longest = 0;
    coll::allreduce(&units, &longest, 1, MPI_LONG_LONG, MPI_MAX, su.world);
    for (long long k = 0; k < longest; ++k) {
      const bool have = k < units;
      times.push_back(have ? res.mine[std::size_t(k)].time_s : std::nan(""));
      for (const auto& name : res.phase_names) {
        double v = std::nan("");
        if (have)
          for (const auto& [n2, x] : res.mine[std::size_t(k)].phases)
            if (n2 == name) v = x;
        phases[name].push_back(v);
      }
    }
    for (std::size_t k = 0; k < losses.size(); ++k) {
      const auto t = coll::over_ranks(su.world, k < times.size() ? times[k] : std::nan(""));
      log0(progress.format(int(first_step + std::int64_t(k) + 1), losses[k], t[1], work_per_step / t[1], ""));
    }
  }
  const coll::Counters counters = trainer.counters();  // before any communication-only replay
  if (su.pure_comm_reps > 0) trainer.measure_pure_comm(su.pure_comm_reps);

  // Summary over the timed steps of this run (a resumed or stopped run counts the steps it trained, and warms up
  // again): per-rank medians, then min/median/max over ranks.
  parallel::RunMedians med;
  med.steps = std::int64_t(losses.size());
  const std::int64_t warmup = std::min(ts.warmup, std::max<std::int64_t>(med.steps - 1, 0));
  med.timed_steps = med.steps - warmup;
  const auto step_t = coll::over_ranks(su.world, timed_median(times, warmup));
  const auto wall_t = coll::over_ranks(su.world, timed_median(walls, warmup));
  med.step_time_s = step_t[1];
  for (const auto& [name, v] : phases) med.phase_s[name] = coll::over_ranks(su.world, timed_median(v, warmup))[1];
  const auto waited = coll::over_ranks(su.world, phases.count("wait_for_others") ? timed_median(phases["wait_for_others"], warmup)
                                                                                 : std::nan(""));
  double exposed = 0;
  for (const auto& p : trainer.exposed_comm_phases()) exposed += med.phase(p);

  bool finite = true;
  for (double l : losses) finite = finite && std::isfinite(l);
  std::vector<std::pair<std::string, bool>> checks = {{"losses finite", finite}};
  for (auto& c : trainer.self_check()) checks.push_back(c);
  bool pass = true;
  std::string verdicts;
  for (const auto& [what, ok] : checks) {
    pass = pass && ok;
    verdicts += (verdicts.empty() ? "" : "; ") + what + ": " + (ok ? "yes" : "no");
  }
  auto strategy_summary = trainer.summary(med);  // collective
  auto extra = trainer.datasets();               // collective
  auto figure = [&](const char* key) {  // a strategy's own figure replaces the driver's (the parameter server's rates)
    for (const auto& [k, v] : strategy_summary)
      if (k == key) return v;
    return std::nan("");
  };

  const auto mem = memory_snapshot();
  char line[640];
  std::snprintf(line, sizeof line, "# step time %.2f / %.2f / %.2f ms (min/median/max over ranks, %lld timed step%s)",
                step_t[0] * 1e3, step_t[1] * 1e3, step_t[2] * 1e3, (long long)med.timed_steps,
                med.timed_steps == 1 ? "" : "s");
  log0(line);
  if (!std::isnan(wall_t[1])) {
    std::snprintf(line, sizeof line,
                  "# back to back %.2f ms per step (median; the wall clock between step ends: each step's start "
                  "barrier and the step line's agreement included, checkpoints and dumps not)", wall_t[1] * 1e3);
    log0(line);
  }
  if (!std::isnan(waited[1])) {
    std::snprintf(line, sizeof line,
                  "# waiting for the slowest rank %.2f / %.2f / %.2f ms per step (min/median/max over ranks: load "
                  "imbalance, paid inside exposed communication and bubbles)",
                  waited[0] * 1e3, waited[1] * 1e3, waited[2] * 1e3);
    log0(line);
  }
  for (const auto& [name, v] : strategy_summary)
    if (name == "comm_pure_s") {  // the replayed communication beside the part of it the step waited for
      std::snprintf(line, sizeof line, "# gradient communication alone (t_pure) %.2f ms, exposed %.2f ms per step",
                    v * 1e3, med.phase("comm_exposed") * 1e3);
      log0(line);
    }
  if (med.phase_s.count("tp_comm")) {  // not replayed: it sits inside the forward and backward, all of it waited for
    std::snprintf(line, sizeof line, "# tensor-parallel collectives %.2f ms per step (inside forward and backward)",
                  med.phase("tp_comm") * 1e3);
    log0(line);
  }
  log0("# memory peak per rank: params " + format_bytes(double(mem.peak[0])) + ", grads " +
       format_bytes(double(mem.peak[1])) + ", optimizer " + format_bytes(double(mem.peak[2])) + ", activations " +
       format_bytes(double(mem.peak[3])) + ", comm buffers " + format_bytes(double(mem.peak[4])) + ", rss " +
       format_bytes(double(peak_rss_bytes())));
  const auto predicted = trainer.predicted_state_bytes();
  if (predicted[0] >= 0)
    log0("# model states on rank 0: params " + format_bytes(double(mem.peak[0])) + " (predicted " +
         format_bytes(predicted[0]) + "), grads " + format_bytes(double(mem.peak[1])) + " (" + format_bytes(predicted[1]) +
         "), optimizer " + format_bytes(double(mem.peak[2])) + " (" + format_bytes(predicted[2]) + ")");
  for (const auto& l : trainer.summary_lines()) log0(l);
  // The performance model's step beside the measurement (--profile): the same deck, the profile's rates.
  std::optional<perf::StepPrediction> pred;
  std::string profile_name;
  if (su.controls && su.controls->profile) {
    const auto& prof = *su.controls->profile;
    int hosts = 1;
    for (char c : prov.hostnames) hosts += c == ',';
    const auto resolved = DeckTable::parse(deck.to_toml(), "the resolved deck");
    auto in = perf::step_inputs(resolved, su.strategy, n, hosts > 1 ? n / hosts : 0, su.model, ts);
    for (const auto& [k, v] : trainer.attributes())
      if (k == "algorithm_resolved") in.algo = v;  // what the trainer's "auto" became
    for (const auto& [k, v] : strategy_summary)
      if (k == "expert_rank_load_imbalance") in.moe_imbalance = v;  // the routing that happened (perf/step_model.hpp)
    pred = perf::predict_step(in, prof);
    profile_name = prof.name;
    std::snprintf(line, sizeof line,
                  "# predicted step %.2f ms (measured %.2f, %+.1f%%): compute %.2f, bubble %.2f, optimizer %.2f, "
                  "exposed comm %.2f of %.2f ms [profile %s]",
                  pred->step_s * 1e3, step_t[1] * 1e3, 100.0 * (pred->step_s / step_t[1] - 1),
                  (pred->forward_s + pred->backward_s) * 1e3, pred->bubble_s * 1e3, pred->optimizer_s * 1e3,
                  pred->comm_exposed_s * 1e3, pred->comm_pure_s * 1e3, prof.name.c_str());
    log0(line);
    if (!pred->note.empty()) log0("# prediction: " + pred->note);
  }
  std::snprintf(line, sizeof line, "# self-check: %s (%s; loss %.4f -> %.4f)", pass ? "PASS" : "FAIL",
                verdicts.c_str(), losses.empty() ? 0.0 : losses.front(), losses.empty() ? 0.0 : losses.back());
  log0(line);
  const double own_samples = figure("samples_per_s");  // a strategy that measures its own rate (ps)
  const double throughput = std::isnan(own_samples) ? work_per_step / step_t[1]
                                                     : own_samples * (gpt ? tokens_per_sample : 1.0);
  std::snprintf(line, sizeof line,
                "FOM %s %s ranks=%d dp=%d tp=%d pp=%d step_time_median_ms=%.3f %s_per_s=%.1f gflops_per_s=%.2f "
                "comm_pct=%.1f",
                su.app.c_str(), models::describe(su.model).c_str(), n, su.dp, su.tp, su.pp, step_t[1] * 1e3,
                gpt ? "tokens" : "samples", throughput, flops_per_step * throughput / work_per_step / 1e9,
                100.0 * exposed / step_t[1]);
  log0(line);

  if (!opts.output.empty()) {
    io::RankRecord rec;
    rec.time_s = times;
    rec.wall_s = walls;
    rec.phases = phases;
    rec.memory = mem;
    rec.rss_peak_bytes = peak_rss_bytes();
    rec.comm = counters;
    io::RunInfo info;
    info.path = opts.output;
    info.overwrite = opts.overwrite;
    info.app = su.app;
    info.strategy = su.strategy;
    info.model = models::describe(su.model);
    info.config_toml = deck.to_toml();
    info.dp = su.dp;
    info.tp = su.tp;
    info.pp = su.pp;
    info.warmup_steps = warmup;
    info.loss = losses;
    info.attrs = {{"dtype", su.model.dtype}, {"precision", ts.precision}, {"wait_policy", coll::wait_policy_name(coll::wait_policy())},
                  {"complete", stopped_at < 0 ? "true" : "false"}, {"first_step", std::to_string(first_step)}};
    if (stopped_at >= 0) info.attrs.push_back({"stopped_before_step", std::to_string(stopped_at + 1)});
    if (!resumed_from.empty()) info.attrs.push_back({"resumed_from", resumed_from});
    if (!attempts.empty()) info.attrs.push_back({"attempts", attempts});
    for (const auto& a : trainer.attributes()) info.attrs.push_back(a);
    for (const auto& a : su.attrs) info.attrs.push_back(a);
    info.summary = {{"step_time_median_s", step_t[1]},
                    {"step_time_min_s", step_t[0]},
                    {"step_time_max_s", step_t[2]},
                    {"step_wall_median_s", wall_t[1]},
                    {"wait_for_others_min_s", waited[0]},
                    {"wait_for_others_median_s", waited[1]},
                    {"wait_for_others_max_s", waited[2]},
                    {"flops_per_step", flops_per_step},
                    {"flops_per_s", flops_per_step * throughput / work_per_step},
                    {"comm_exposed_share", exposed / step_t[1]},
                    {"params_bytes", double(mem.peak[0])},
                    {"grads_bytes", double(mem.peak[1])},
                    {"optimizer_bytes", double(mem.peak[2])},
                    {"activations_bytes", double(mem.peak[3])},
                    {"comm_buffers_bytes", double(mem.peak[4])}};
    const char* state_names[] = {"params", "grads", "optimizer"};
    for (int c = 0; c < 3; ++c)
      if (predicted[std::size_t(c)] >= 0)
        info.summary.push_back({std::string("predicted_") + state_names[c] + "_bytes", predicted[std::size_t(c)]});
    if (std::isnan(figure("samples_per_s"))) info.summary.push_back({"samples_per_s", double(ts.global_batch) / step_t[1]});
    info.summary.push_back({"tokens_per_s", gpt ? throughput : 0.0});
    for (const auto& f : strategy_summary) info.summary.push_back(f);
    if (pred) {
      info.summary.push_back({"predicted_step_time_s", pred->step_s});
      info.summary.push_back({"predicted_compute_s", pred->forward_s + pred->backward_s});
      info.summary.push_back({"predicted_bubble_s", pred->bubble_s});
      info.summary.push_back({"predicted_optimizer_s", pred->optimizer_s});
      info.summary.push_back({"predicted_comm_exposed_s", pred->comm_exposed_s});
      info.summary.push_back({"predicted_comm_pure_s", pred->comm_pure_s});
      info.attrs.push_back({"profile", opts.profile});
      info.attrs.push_back({"profile_name", profile_name});
      if (!pred->note.empty()) info.attrs.push_back({"prediction_note", pred->note});
    }
    info.extra = std::move(extra);
    io::write_result(su.world, prov, info, rec);
    log0("# result written to " + opts.output + (stopped_at >= 0 ? " (marked incomplete)" : ""));
  }
  if (stopped_at >= 0) return kExitStopped;
  return pass ? 0 : 1;
}

}  // namespace partrain::app
