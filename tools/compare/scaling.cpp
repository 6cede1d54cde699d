#include "scaling.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>

namespace partrain::compare {
namespace {
double median_of(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x) || x <= 0; }), v.end());
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

double batch_of(const Run& r) {
  auto it = r.config.find("train.batch");
  return it == r.config.end() ? NAN : std::atof(it->second.c_str());
}

bool same_family(const Run& a, const Run& b) {
  return a.app == b.app && a.model == b.model && a.threads == b.threads && scaling_config(a) == scaling_config(b);
}
}  // namespace

std::map<std::string, std::string> scaling_config(const Run& r) {
  auto c = r.config;
  for (const char* k : {"train.batch", "tp.degree", "pp.degree", "nmt.model_parallel", "nmt.replicas"}) c.erase(k);
  return c;
}

double throughput(const Run& r) { return r.tokens_per_s > 0 ? r.tokens_per_s : r.samples_per_s; }

Scaling scaling_of(const std::vector<Run>& runs, const std::vector<Run>& candidates) {
  Scaling s;
  if (runs.empty() || runs.front().strategy == "collectives") return s;
  const Run& me = runs.front();
  int base = INT_MAX;
  for (const auto& c : candidates)
    if (same_family(c, me)) base = std::min(base, c.nranks);
  if (base == INT_MAX) return s;
  std::vector<double> mine, theirs;
  double base_batch = NAN;
  for (const auto& r : runs) mine.push_back(throughput(r));
  for (const auto& c : candidates)
    if (same_family(c, me) && c.nranks == base) {
      theirs.push_back(throughput(c));
      base_batch = batch_of(c);
      s.base_strategy = c.strategy;
    }
  const double p1 = base, p = me.nranks, b1 = base_batch, bp = batch_of(me);
  const bool strong = b1 == bp, weak = std::abs(bp * p1 - b1 * p) < 1e-9 * std::max(1.0, bp * p1);
  if (!strong && !weak) return s;
  const double t = median_of(mine), t1 = median_of(theirs);
  if (std::isnan(t) || std::isnan(t1)) return s;
  s.base_ranks = base;
  s.efficiency = (t / t1) * (p1 / p);
  s.speedup = s.efficiency * p / p1;
  s.kind = p == p1 ? "base" : strong ? "strong" : "weak";
  return s;
}

}  // namespace partrain::compare
