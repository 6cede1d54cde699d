// Parallel efficiency, the one definition partrain-compare prints and tools/analysis/plot_scaling.py draws (it reads
// partrain-compare --csv): a run against the run of the same app, model and threads per rank whose configuration is
// the same less what a scaling sweep changes with the rank count (the global batch, and the degrees that follow the
// ranks: tp.degree, pp.degree, nmt.model_parallel, nmt.replicas), at the smallest rank count of its source.
//   efficiency = (throughput_p / throughput_base) · (p_base / p)
// which is p_base·T_base / (p·T_p) when the global batch is unchanged (strong scaling) and T_base / T_p when it grows
// with the ranks (weak scaling); throughput is the strategy's own rate where it has one (the parameter server's
// samples per second), so it is right also where ranks do not step together. Speedup = efficiency · p / p_base.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "result_reader.hpp"

namespace partrain::compare {

struct Scaling {
  double efficiency = NAN, speedup = NAN;
  int base_ranks = 0;
  std::string base_strategy;  ///< the baseline's strategy (with its variant): rows sharing it form one scaling series
  std::string kind;  ///< "base" (the baseline itself), "strong", "weak"; "" when there is no baseline
};

/// The configuration a scaling sweep keeps fixed: `r.config` less the batch and the degrees that follow the ranks.
std::map<std::string, std::string> scaling_config(const Run& r);
/// A run's throughput: tokens per second for token models, else samples per second (the strategy's own rate).
double throughput(const Run& r);
/// `runs`: one source's runs of the row (repetitions, medians taken); `candidates`: every run of that source.
Scaling scaling_of(const std::vector<Run>& runs, const std::vector<Run>& candidates);

}  // namespace partrain::compare
