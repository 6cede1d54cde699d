// Two machines' rates side by side: what partrain-compare prints under each source that holds a profile (the quick
// start calibrates one into its output folder; each reference result set keeps its machine's), so that a step-time
// ratio between machines reads as what it is — "this host's gemms are 1.35x slower" — and not as a regression.
#pragma once

#include <string>

#include "partrain/perf/profile.hpp"

namespace partrain::perf {

/// The rates that set the step of the suite's small models, of one profile: the medium and large gemm, the memory
/// bandwidth, and a 1 MiB allreduce within a node (the profile's fastest algorithm for it).
struct KeyRates {
  double gemm_medium = 0, gemm_large = 0, memory_Bps = 0;
  double allreduce_1MiB_s = 0;
  std::string allreduce_algo;
};
KeyRates key_rates(const MachineProfile& p);

/// "gemm 152 / 160 GFLOP/s (medium / large), memory 21.4 GB/s, allreduce of 1 MiB 0.41 ms (shm)"
std::string describe_rates(const KeyRates& r);
/// How `mine` differs from `ref`: "gemm 1.35x slower (medium) ..., memory 1.10x faster, allreduce of 1 MiB 0.90x the
/// time" (each figure as the factor this machine is faster or slower; within 3% reads "the same").
std::string compare_rates(const KeyRates& mine, const KeyRates& ref);

}  // namespace partrain::perf
