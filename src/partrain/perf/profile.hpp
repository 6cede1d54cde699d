// A machine profile: what the performance model needs to know about a machine — the rate of its gemms by shape
// class, its memory bandwidth, and α, β of each collective algorithm and operation within a node and between nodes.
// partrain-calibrate measures one (a TOML file); hand-written ones for published systems live in inputs/machines/,
// each figure with its source in a comment. TOML rather than HDF5: a profile is small, is read and edited by people,
// and is diffed in review.
#pragma once

#include <string>
#include <vector>

#include "partrain/perf/collective_model.hpp"

namespace partrain::perf {

struct CollectiveFit {
  std::string algo, op;     ///< "ring", "allreduce", …
  std::string scope;        ///< "intra" (ranks of one node) or "inter" (between nodes)
  int ranks = 0;            ///< the rank count it was measured at (0: hand-written)
  LinkParams link;
  double fit_error = 0;     ///< median relative error of the fit over the measured sizes
};

struct MachineProfile {
  std::string name, source;
  int ranks_per_node = 1;
  /// fp32 gemm rate of one rank (FLOP/s) for square-ish shapes of side ≤ 192 ("small"), ≤ 768 ("medium"), larger.
  double gemm_small = 0, gemm_medium = 0, gemm_large = 0;
  double memory_Bps = 0;  ///< one rank's streaming rate (bytes read + written per second), every rank at once
  double reduce_Bps = 0;  ///< one rank's a += b rate over its bytes of b (γ = 1 / reduce_Bps)
  std::vector<CollectiveFit> collectives;

  /// The gemm rate for an m×n×k product (the class of its geometric mean side).
  double gemm_rate(double m, double n, double k) const;
  /// The fit for (algo, op, scope); nullptr when the profile has none.
  const CollectiveFit* find(const std::string& algo, const std::string& op, const std::string& scope) const;
};

/// Reads a profile; InputError naming `key` (the flag that gave the path) on a missing file, a TOML error or a
/// missing/invalid entry.
MachineProfile read_profile(const std::string& key, const std::string& path);
/// The profile as TOML (comments say what each figure is).
std::string to_toml(const MachineProfile& p);

}  // namespace partrain::perf
