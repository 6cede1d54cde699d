#include "partrain/perf/profile_compare.hpp"

#include <cmath>
#include <cstdio>

namespace partrain::perf {
namespace {
/// "1.35x faster", "1.35x slower" or "the same" for a rate (higher is faster) of this machine against the reference's.
std::string factor(double mine, double ref) {
  if (!(mine > 0) || !(ref > 0)) return "unknown";
  const double f = mine / ref;
  char b[48];
  if (std::abs(f - 1) < 0.03) return "the same";
  std::snprintf(b, sizeof b, "%.2fx %s", f >= 1 ? f : 1 / f, f >= 1 ? "faster" : "slower");
  return b;
}
}  // namespace

KeyRates key_rates(const MachineProfile& p) {
  KeyRates r;
  r.gemm_medium = p.gemm_medium;
  r.gemm_large = p.gemm_large;
  r.memory_Bps = p.memory_Bps;
  const double n = 1048576;
  for (const auto& c : p.collectives) {
    if (c.op != "allreduce" || c.scope != "intra") continue;
    const auto* f = p.find(c.algo, "allreduce", "intra", n);
    if (!f) continue;
    const double t = collective_time(f->algo, "allreduce", std::max(2, f->ranks), n, f->link);
    if (t > 0 && (r.allreduce_1MiB_s == 0 || t < r.allreduce_1MiB_s)) {
      r.allreduce_1MiB_s = t;
      r.allreduce_algo = f->algo;
    }
  }
  return r;
}

std::string describe_rates(const KeyRates& r) {
  char b[256];
  std::snprintf(b, sizeof b, "gemm %.0f / %.0f GFLOP/s (medium / large), memory %.1f GB/s", r.gemm_medium / 1e9,
                r.gemm_large / 1e9, r.memory_Bps / 1e9);
  std::string s = b;
  if (r.allreduce_1MiB_s > 0) {
    std::snprintf(b, sizeof b, ", allreduce of 1 MiB %.3f ms (%s)", r.allreduce_1MiB_s * 1e3, r.allreduce_algo.c_str());
    s += b;
  }
  return s;
}

std::string compare_rates(const KeyRates& mine, const KeyRates& ref) {
  std::string s = "gemm " + factor(mine.gemm_medium, ref.gemm_medium) + " (medium), " +
                  factor(mine.gemm_large, ref.gemm_large) + " (large); memory " + factor(mine.memory_Bps, ref.memory_Bps);
  if (mine.allreduce_1MiB_s > 0 && ref.allreduce_1MiB_s > 0)  // a time: the reference's over this machine's is the rate
    s += "; allreduce of 1 MiB " + factor(ref.allreduce_1MiB_s, mine.allreduce_1MiB_s);
  return s;
}

}  // namespace partrain::perf
