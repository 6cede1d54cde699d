// Reading partrain result files defensively: any HDF5 file may be handed to partrain-compare, so every access
// is checked and a foreign, corrupt or newer file gives an InputError naming the file, never a crash.
#pragma once

#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace partrain::compare {

struct Run {
  std::string path, app, strategy, variant, model, hostnames, git_commit, created_utc, mpi_version, blas, config_toml;
  int nranks = 1, dp = 1, tp = 1, pp = 1;
  int threads = 1;  ///< threads per rank (files written before it was recorded: 1)
  std::map<std::string, std::string> config;
  // strategy holds "<strategy> <variant>" when the file names a variant (a pipeline schedule, a ZeRO stage, ...)  ///< config_toml flattened: "train.batch" → "16"
  double step_time_s = NAN, samples_per_s = NAN, tokens_per_s = NAN, comm_exposed_s = NAN, comm_exposed_share = NAN;
  double predicted_step_time_s = NAN;  ///< the performance model's (runs with --profile)
  double bubble_fraction = NAN;        ///< partrain-pp: the pipeline's idle share
  double memory_bytes = NAN;           ///< rank 0's peak: parameters + gradients + optimizer + activations + buffers
  double busbw_GBps = NAN;  ///< collectives: best algorithm's busbw at the largest size
  std::string busbw_algo;
};

/// Reads one file (InputError naming it if it is not a readable partrain result of schema version 1).
Run read_run(const std::string& path);
/// A file, or every *.h5 below a directory (sorted); InputError when nothing is found.
std::vector<std::string> result_files(const std::string& arg);
/// The machine profile a source directory keeps beside its results: its one file named machine.toml, at any depth
/// (the quick start's output folder, a reference set's machine folder); "" when there is none, or several.
std::string machine_profile_of(const std::string& arg);

}  // namespace partrain::compare
