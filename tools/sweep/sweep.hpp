// Scaling sweeps: a sweep file (inputs/sweeps/*.toml) names a mini-app, its deck, the kind of scaling, the rank
// counts and the overrides; partrain-sweep turns it into one job script per (rank count, repetition) from the
// templates in jobscripts/, for SLURM, PBS or this machine.
//
// Sweep keys: app (any partrain mini-app), deck, mpiexec (the launcher; default: the configured one), kind ("strong" | "weak"), ranks [list], ranks_per_node, repetitions, time_limit
// ("HH:MM:SS"), args [list of extra arguments], [set] (deck overrides for every point), [weak] (per-rank values,
// multiplied by the rank count at each point; kind = "weak"), [points.<ranks>] (overrides for one rank count),
// [slurm] (partition, account, launcher = "mpiexec" | "srun", directives = [...]),
// [pbs] (queue, account, directives = [...]). A value beginning with CHANGE_ME is a placeholder: it is written as
// a commented-out directive marked for the user to edit.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace partrain::sweep {

struct SiteOptions {
  std::string partition, queue, account, launcher = "mpiexec";
  std::vector<std::string> directives;
};

struct Sweep {
  std::string name, app, deck, kind = "strong", time_limit = "00:30:00";
  /// The launcher of the jobs (unless [slurm] launcher = "srun"): by default the mpiexec partrain was configured with
  /// (CMake's MPIEXEC_EXECUTABLE), which matches the MPI the mini-apps are built against; "mpiexec" takes PATH's.
  std::string mpiexec;
  std::vector<int> ranks;
  /// threads per rank, a sweep dimension beside ranks (default [1]): PARTRAIN_THREADS (BLAS and OpenMP threads,
  /// scripts/env.sh), --cpus-per-task (SLURM), ncpus (PBS)
  std::vector<int> threads = {1};
  int ranks_per_node = 1, repetitions = 1;
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> set;               ///< key, TOML value text
  std::vector<std::pair<std::string, double>> weak;                   ///< key, per-rank value
  std::map<int, std::vector<std::pair<std::string, std::string>>> points;
  SiteOptions slurm, pbs;
  /// requeue = true: every point checkpoints every `checkpoint_every` steps into <out>/checkpoints/<point> and starts
  /// with --resume; SLURM jobs are requeueable (--requeue) and get SIGUSR1 60 s before their time limit, on which
  /// the mini-app writes a checkpoint and stops (exit code 3) and the job requeues itself; PBS jobs are rerunnable.
  bool requeue = false;
  std::int64_t checkpoint_every = 10;
  /// requeue = true: a run that fails otherwise (a rank or a whole node died: any exit but 0, 2 — bad input — and
  /// the stop codes) requeues itself too, at most this many times per point (counted in its checkpoint directory).
  std::int64_t max_requeues = 3;
};

struct Point {
  std::string name;  ///< <sweep>_r<ranks>_k<rep>, or <sweep>_r<ranks>_t<threads>_k<rep> when threads is not [1]
  int ranks = 1, nodes = 1, rep = 0, threads = 1;
  std::vector<std::string> argv;  ///< the mini-app's arguments (without the launcher)
  std::string checkpoint_dir;     ///< requeue = true: where its checkpoints (and its failure count) live
};

/// The sweep files a suite file lists (`sweeps = ["inputs/sweeps/dp_gpt_strong.toml", …]`, as written); empty when
/// the file is a sweep file, not a suite. InputError on a malformed suite.
std::vector<std::string> load_suite(const std::string& path);

/// Parses and validates a sweep file; InputError naming the file and key on anything unknown or wrong.
Sweep load_sweep(const std::string& path);

/// The points of a sweep for a scheduler ("slurm", "pbs", "local"); InputError for rank counts the scheduler
/// cannot give (local: more than one node; any: ranks not a multiple of ranks_per_node beyond one node).
std::vector<Point> expand(const Sweep& s, const std::string& scheduler, const std::string& result_dir);

/// Fills a job-script template ({{KEY}} placeholders); InputError naming the template when it is missing.
std::string render_job(const std::string& template_path, const Sweep& s, const Point& p, const std::string& scheduler,
                       const std::string& workdir, const std::string& binary, const std::string& log_path);

/// The mini-app binary under a build directory (miniapps/… or collectives/…).
std::string binary_path(const std::string& build_dir, const std::string& app);
/// The mini-app beside partrain-sweep (in directory exe_dir): in its build tree (exe_dir/../miniapps/…) or, installed,
/// in the same bin/ directory.
std::string find_binary(const std::string& exe_dir, const std::string& app);

}  // namespace partrain::sweep
