#include "partrain/perf/collective_model.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "partrain/core/error.hpp"

namespace partrain::perf {
namespace {

double log2_ceil(int p) {
  int k = 0;
  while ((1 << k) < p) ++k;
  return k;
}

bool power_of_two(int p) { return p > 0 && (p & (p - 1)) == 0; }

CostTerms ring(const std::string& op, double p) {
  const double f = (p - 1) / p;
  if (op == "allreduce") return {2 * (p - 1), 2 * f, f};
  if (op == "reduce_scatter") return {p - 1, f, f};
  if (op == "allgather") return {p - 1, f, 0};
  if (op == "broadcast") return {2 * (p - 1), 2 * f, 0};  // scatter + ring allgather (van de Geijn)
  if (op == "alltoall") return {p - 1, f, 0};             // pairwise exchange
  throw RuntimeError("no cost model for ring " + op);
}

CostTerms recdbl(const std::string& op, int p) {
  // Recursive halving / doubling (Rabenseifner) on p' = 2^floor(log2 p) virtual ranks; a non-power of two folds the
  // extra ranks in first (one exchange of the whole vector, reduced) and returns the result last (one more).
  const int pv = power_of_two(p) ? p : 1 << int(std::floor(std::log2(double(p))));
  const double lg = std::log2(double(pv)), f = (double(pv) - 1) / double(pv);
  CostTerms t;
  if (op == "allreduce") t = {2 * lg, 2 * f, f};
  else if (op == "reduce_scatter") t = {lg, f, f};
  else if (op == "allgather") t = {lg, f, 0};
  else throw RuntimeError("no cost model for recdbl " + op);
  if (pv != p) {
    t.a += 2;
    t.b += op == "allreduce" ? 2 : 1;
    t.c += op == "allgather" ? 0 : 1;
  }
  return t;
}

CostTerms tree(const std::string& op, int p) {
  const double lg = log2_ceil(p);
  if (op == "allreduce") return {2 * lg, 2 * lg, lg};  // binomial reduce, then binomial broadcast
  if (op == "broadcast") return {lg, lg, 0};
  throw RuntimeError("no cost model for tree " + op);
}

}  // namespace

CostTerms cost_terms(const std::string& algo, const std::string& op, int p, double n) {
  if (p <= 1) return {};
  if (algo == "ring") return ring(op, p);
  if (algo == "recdbl") return recdbl(op, p);
  if (algo == "tree") return tree(op, p);
  if (algo == "shm") {
    CostTerms t = ring(op, p);
    t.a = 2;
    t.b = (double(p) - 1) / p;
    return t;
  }
  if (algo == "vendor") {
    if (op == "broadcast") return tree(op, p);
    if (n >= 65536 || op == "alltoall") return ring(op, p);
    return recdbl(op, p);
  }
  throw RuntimeError("no cost model for algorithm " + algo);
}

double collective_time(const std::string& algo, const std::string& op, int p, double n, const LinkParams& link) {
  const CostTerms t = cost_terms(algo, op, p, n);
  return t.a * link.alpha_s + t.b * n * link.beta_s_per_B + t.c * n * link.gamma_s_per_B;
}

LinkParams fit_alpha_beta(const std::string& algo, const std::string& op, int p,
                          const std::vector<std::pair<double, double>>& n_and_t, double gamma_s_per_B) {
  // minimise Σ w² (a α + b n β − y)², y = t − c n γ, w = 1/t: the 2×2 normal equations
  double s_aa = 0, s_ab = 0, s_bb = 0, s_ay = 0, s_by = 0;
  for (const auto& [n, t] : n_and_t) {
    if (!(t > 0)) continue;
    const CostTerms c = cost_terms(algo, op, p, n);
    const double w = 1 / t, x1 = c.a * w, x2 = c.b * n * w, y = (t - c.c * n * gamma_s_per_B) * w;
    s_aa += x1 * x1;
    s_ab += x1 * x2;
    s_bb += x2 * x2;
    s_ay += x1 * y;
    s_by += x2 * y;
  }
  LinkParams l;
  l.gamma_s_per_B = gamma_s_per_B;
  const double det = s_aa * s_bb - s_ab * s_ab;
  if (std::abs(det) > 1e-300 * std::max(1.0, s_aa * s_bb)) {
    l.alpha_s = (s_ay * s_bb - s_by * s_ab) / det;
    l.beta_s_per_B = (s_aa * s_by - s_ab * s_ay) / det;
  }
  // a negative term is noise: refit the other alone
  if (l.alpha_s < 0) {
    l.alpha_s = 0;
    l.beta_s_per_B = s_bb > 0 ? s_by / s_bb : 0;
  }
  if (l.beta_s_per_B < 0) {
    l.beta_s_per_B = 0;
    l.alpha_s = s_aa > 0 ? s_ay / s_aa : 0;
  }
  return l;
}

namespace {

double median(std::vector<double> e) {
  if (e.empty()) return 0;
  std::nth_element(e.begin(), e.begin() + std::ptrdiff_t(e.size() / 2), e.end());
  return e[e.size() / 2];
}

}  // namespace

std::vector<RangeFit> fit_by_size_range(const std::string& algo, const std::string& op, int p,
                                        std::vector<std::pair<double, double>> n_and_t, double gamma_s_per_B) {
  std::sort(n_and_t.begin(), n_and_t.end());
  RangeFit one;
  one.link = fit_alpha_beta(algo, op, p, n_and_t, gamma_s_per_B);
  one.fit_error = median_relative_error(algo, op, p, n_and_t, one.link);
  std::vector<RangeFit> best{one};
  if (one.fit_error <= 0.03) return best;
  double best_error = one.fit_error / 2;  // a split must at least halve it
  for (std::size_t k = 3; k + 3 <= n_and_t.size(); ++k) {
    const std::vector<std::pair<double, double>> lo(n_and_t.begin(), n_and_t.begin() + std::ptrdiff_t(k)),
        hi(n_and_t.begin() + std::ptrdiff_t(k), n_and_t.end());
    RangeFit a, b;
    a.link = fit_alpha_beta(algo, op, p, lo, gamma_s_per_B);
    b.link = fit_alpha_beta(algo, op, p, hi, gamma_s_per_B);
    a.fit_error = median_relative_error(algo, op, p, lo, a.link);
    b.fit_error = median_relative_error(algo, op, p, hi, b.link);
    a.max_bytes = b.min_bytes = n_and_t[k].first;
    // the median relative error over all the points, each under its own range's fit
    std::vector<double> e;
    for (const auto& [n, t] : n_and_t)
      if (t > 0) e.push_back(std::abs(collective_time(algo, op, p, n, n < b.min_bytes ? a.link : b.link) - t) / t);
    if (!e.empty() && median(e) < best_error) {
      best_error = median(e);
      best = {a, b};
    }
  }
  return best;
}

double median_relative_error(const std::string& algo, const std::string& op, int p,
                             const std::vector<std::pair<double, double>>& n_and_t, const LinkParams& link) {
  std::vector<double> e;
  for (const auto& [n, t] : n_and_t)
    if (t > 0) e.push_back(std::abs(collective_time(algo, op, p, n, link) - t) / t);
  return median(std::move(e));
}

}  // namespace partrain::perf
