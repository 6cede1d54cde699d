// What every training mini-app shares beyond the step loop (docs/checkpoints.md):
// checkpoints (--checkpoint-dir, --checkpoint-every, --keep, --resume), fault injection (--inject), the watchdog
// (--timeout) and the stop signals (SIGTERM, SIGUSR1: finish the step, write a checkpoint and a result file marked
// incomplete, exit with code 3).
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>

#include "partrain/collectives/wait.hpp"
#include "partrain/core/cli.hpp"
#include "partrain/core/error.hpp"
#include "partrain/core/fault.hpp"
#include "partrain/core/log.hpp"
#include "partrain/io/checkpoint.hpp"
#include "partrain/models/model_config.hpp"
#include "partrain/parallel/state.hpp"
#include "partrain/perf/profile.hpp"

namespace partrain::app {

/// The exit code of a run stopped by SIGTERM or SIGUSR1 after it wrote its checkpoint (resume it with --resume).
constexpr int kExitStopped = 3;

struct RunControls {
  FaultPlan faults;
  std::string resume_path;  ///< the checkpoint to continue from ("": start at step 0)
  std::shared_ptr<perf::MachineProfile> profile;  ///< --profile: predict the step beside the measurement
};

/// The shared flags' checks that need no communication (call before check_inputs): --inject parsed against the
/// ranks, a usable checkpoint directory (created later), earlier checkpoints refused unless --resume or --overwrite,
/// --checkpoint-every without a directory, checkpoints where the strategy has none. InputError naming the flag.
inline RunControls check_run_controls(const CommonOptions& opts, int world, bool supports_checkpoints,
                                      const std::string& why_not = "") {
  RunControls rc;
  rc.faults = FaultPlan(opts.inject, world);
  for (const auto& f : rc.faults.faults())
    if (f.kind == Fault::Join)  // spares exist only in partrain-ps, which parses its plan itself
      input_error("--inject", "join:rank=" + std::to_string(f.rank) + ":step=" + std::to_string(f.step),
                  "joining a running job is partrain-ps's (ps.spares)");
  if (!opts.profile.empty())
    rc.profile = std::make_shared<perf::MachineProfile>(perf::read_profile(
        std::getenv("PARTRAIN_PROFILE") && opts.profile == std::getenv("PARTRAIN_PROFILE") ? "PARTRAIN_PROFILE" : "--profile",
        opts.profile));
  const bool wants = !opts.checkpoint_dir.empty() || opts.checkpoint_every > 0 || opts.resume;
  if (wants && !supports_checkpoints)
    input_error(!opts.checkpoint_dir.empty() ? "--checkpoint-dir" : opts.resume ? "--resume" : "--checkpoint-every",
                !opts.checkpoint_dir.empty() ? opts.checkpoint_dir : opts.resume ? opts.resume_dir : std::to_string(opts.checkpoint_every),
                why_not.empty() ? "this strategy does not checkpoint" : why_not);
  if (opts.checkpoint_every > 0 && opts.checkpoint_dir.empty())
    input_error("--checkpoint-every", std::to_string(opts.checkpoint_every), "needs --checkpoint-dir");
  if (opts.resume && opts.resume_dir.empty()) input_error("--resume", "", "needs a directory (--resume DIR or --checkpoint-dir)");
  const std::string& dir = opts.checkpoint_dir;
  if (!dir.empty()) io::check_checkpoint_dir("--checkpoint-dir", dir, dir, opts.resume, opts.overwrite);
  if (opts.resume && opts.resume_dir != dir) {
    struct stat st {};
    if (stat(opts.resume_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      input_error("--resume", opts.resume_dir, "is not a directory");
  }
  return rc;
}

/// After check_inputs, collective over MPI_COMM_WORLD: the newest valid checkpoint of the resume directory (the ones
/// skipped reported), checked against the model and the optimizer; "" when there is none (start at step 0 — what a
/// requeued job wants). InputError naming --resume.
/// `ps_mode`: "" for a lockstep trainer (a parameter server's checkpoint is refused), else the parameter-server mode
/// the checkpoint must have been written in (partrain-nmt's asynchronous replicas: "asp").
inline std::string find_resume(const CommonOptions& opts, const models::ModelSpec& model, const models::TrainSpec& train,
                               const std::string& ps_mode = "") {
  if (!opts.resume) return "";
  std::vector<std::string> skipped;
  const std::string path = io::newest_valid_checkpoint(MPI_COMM_WORLD, opts.resume_dir, &skipped);
  for (const auto& s : skipped) log0("# resume: skipped " + s);
  if (path.empty()) {
    log0("# resume: no valid checkpoint in " + opts.resume_dir + "; starting at step 0");
    return "";
  }
  std::vector<io::TensorPart> none;
  io::CheckpointMeta meta;
  io::read_checkpoint(MPI_COMM_WORLD, path, none, &meta);
  if (meta.model != models::describe(model))
    input_error("--resume", path, "is a checkpoint of " + meta.model + ", this run trains " + models::describe(model));
  if (meta.strings.count("optimizer") && meta.strings["optimizer"] != train.optimizer.kind)
    input_error("--resume", path, "was written with train.optimizer = \"" + meta.strings["optimizer"] + "\", this run has \"" +
                                      train.optimizer.kind + "\"");
  const bool of_ps = meta.strings.count("strategy") && meta.strings["strategy"] == "ps";
  if (of_ps && ps_mode.empty())
    input_error("--resume", path, "is a parameter server's checkpoint (its optimizer state lives in the servers' update order)");
  if (!ps_mode.empty() && !of_ps)
    input_error("--resume", path, "was written by strategy " + meta.strings["strategy"] + ", not by parameter servers");
  if (!ps_mode.empty() && meta.strings["ps_mode"] != ps_mode)
    input_error("--resume", path, "was written with ps.mode = \"" + meta.strings["ps_mode"] + "\", this run has \"" + ps_mode + "\"");
  if (meta.step >= train.steps)
    input_error("--resume", path, "is at step " + std::to_string(meta.step) + ": nothing left of train.steps = " + std::to_string(train.steps));
  log0("# resume: " + path + " (step " + std::to_string(meta.step) + ")");
  return path;
}

/// The job's identity for the checkpoint's attempt list: "<job id>#<restart count>" under SLURM, "<PBS job id>", or
/// "local-<pid>".
inline std::string attempt_id() {
  if (const char* j = std::getenv("SLURM_JOB_ID")) {
    const char* r = std::getenv("SLURM_RESTART_COUNT");
    return std::string(j) + "#" + (r ? r : "0");
  }
  if (const char* j = std::getenv("PBS_JOBID")) return j;
  return "local-" + std::to_string(getpid());
}

/// SIGTERM and SIGUSR1 ask for a stop at the next step boundary.
inline volatile std::sig_atomic_t g_stop_signal = 0;
inline void install_stop_handlers() {
  auto handler = [](int sig) { g_stop_signal = sig; };
  std::signal(SIGTERM, handler);
  std::signal(SIGUSR1, handler);
}
/// Collective: whether any rank got a stop signal (the ranks agree at a step boundary).
inline int stop_requested(MPI_Comm comm) {
  int mine = g_stop_signal, any = 0;
  coll::allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm);
  return any;
}

/// Fault injection at the start of step `step` on this rank: kill (SIGKILL), stall (stop responding: sleep until the
/// job is taken down — the watchdog of the other ranks does it), signal (SIGUSR1: a stop at the next step boundary),
/// slow (the step's compute pays the delay: planned here, slept by the trainer inside its timed step).
inline void inject_faults(const FaultPlan& plan, int rank, std::int64_t step) {
  if (plan.empty()) return;
  plan.kill_if_planned(rank, step);
  plan.signal_if_planned(rank, step);
  if (plan.stalls(rank, step)) {
    std::fprintf(stderr, "[rank %d] fault injection: stall at step %lld\n", rank, (long long)step);
    std::fflush(stderr);
    for (;;) {
      const timespec ts{0, 50000000};
      nanosleep(&ts, nullptr);
    }
  }
  plan_straggle(plan.slow_ms(rank, step));
}

}  // namespace partrain::app
