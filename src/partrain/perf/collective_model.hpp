// The α-β-γ cost of each collective algorithm the suite implements (Thakur, Rabenseifner & Gropp 2005; Chan et al.
// 2007): a call moving n bytes among p ranks costs a·α + b·n·β + c·n·γ, where α is the latency of one message, β the
// time per byte on the link and γ the time per byte of the reduction. The coefficients (a, b, c) depend only on the
// algorithm, the operation and p, so a machine's α and β are fitted from measured times by linear least squares.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace partrain::perf {

/// n is the bytes of the whole vector: an allreduce's buffer, reduce_scatter's input, allgather's output,
/// broadcast's buffer, alltoall's send buffer.
struct CostTerms {
  double a = 0, b = 0, c = 0;  ///< multipliers of α, n·β, n·γ
};

/// The terms of `algo` ("ring", "recdbl", "tree", "shm", "vendor") doing `op` ("allreduce", "reduce_scatter",
/// "allgather", "broadcast", "alltoall") on p ranks. "vendor" is modelled as ring for n ≥ 64 KiB and recdbl below
/// (what MPICH's default selection does on one node); "shm" is one pass through shared memory: every rank reads the
/// others' data once (a = 2: two flag synchronisations; b = (p−1)/p, as a copy; c as ring's). RuntimeError for an
/// algorithm that does not implement the operation.
CostTerms cost_terms(const std::string& algo, const std::string& op, int p, double n);

struct LinkParams {
  double alpha_s = 0;      ///< latency per message
  double beta_s_per_B = 0; ///< inverse bandwidth
  double gamma_s_per_B = 0;///< reduction time per byte
};

/// Seconds for one call.
double collective_time(const std::string& algo, const std::string& op, int p, double n, const LinkParams& link);

/// Fits α and β (γ given: measured separately as a memory-bound pass) to measured (n, seconds) pairs of one algorithm
/// and operation at p ranks: least squares on t − c·n·γ = a·α + b·n·β, weighted by 1/t (relative error), α and β
/// clamped at 0. The fitted LinkParams keep γ.
LinkParams fit_alpha_beta(const std::string& algo, const std::string& op, int p,
                          const std::vector<std::pair<double, double>>& n_and_t, double gamma_s_per_B);

/// A fit over the message sizes [min_bytes, max_bytes) (max_bytes 0: no upper end).
struct RangeFit {
  double min_bytes = 0, max_bytes = 0;
  LinkParams link;
  double fit_error = 0;  ///< median relative error over its points
};

/// α and β by message-size range: one fit over every point, or — where a protocol switch (eager to rendezvous, a
/// different code path above some size) bends the curve — two fits split at the measured size that gives the lowest
/// median error, each over at least 3 points, kept only when it at least halves the single fit's median error and that
/// error is above 3%. Points sorted by size or not.
std::vector<RangeFit> fit_by_size_range(const std::string& algo, const std::string& op, int p,
                                        std::vector<std::pair<double, double>> n_and_t, double gamma_s_per_B);

/// Median relative error |model − measured| / measured of a fit over the same points.
double median_relative_error(const std::string& algo, const std::string& op, int p,
                             const std::vector<std::pair<double, double>>& n_and_t, const LinkParams& link);

}  // namespace partrain::perf
