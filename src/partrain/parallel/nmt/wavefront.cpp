#include "partrain/parallel/nmt/wavefront.hpp"

#include <algorithm>
#include <map>

namespace partrain::parallel::nmt {

ChunkCosts flop_costs(const models::NmtConfig& c, std::int64_t B, int k) {
  const double b = double(B), S = double(c.max_len), H = double(c.hidden), V = double(c.vocab);
  ChunkCosts costs;
  costs.forward = [=](const Unit& u, double steps, double in, double units) {
    return u.kind == UnitKind::Attention ? 4.0 * b * steps * S * H : 2.0 * b * steps * 4.0 * units * (in + units);
  };
  costs.backward = [f = costs.forward](const Unit& u, double steps, double in, double units) {
    return 2 * f(u, steps, in, units);
  };
  costs.generator = 3 * 2.0 * b * S * H * V / double(k);  // forward + backward of the generator shard
  return costs;
}

WavefrontModel wavefront_model(const models::NmtConfig& c, const Placement& pl, std::int64_t B, std::int64_t chunk) {
  return wavefront_model(c, pl, chunk, flop_costs(c, B, pl.k()));
}

WavefrontModel wavefront_model(const models::NmtConfig& c, const Placement& pl, std::int64_t chunk,
                               const ChunkCosts& costs) {
  const auto& units = pl.units();
  const int U = int(units.size()), k = pl.k();
  const std::int64_t S = c.max_len, n = (S + chunk - 1) / chunk;
  const double E = double(c.embed), H = double(c.hidden);
  auto steps = [&](std::int64_t ch) { return double(std::min(S, (ch + 1) * chunk) - ch * chunk); };
  // an LSTM unit's input and hidden widths (0, 0: the attention)
  auto widths = [&](const Unit& x) -> std::pair<double, double> {
    switch (x.kind) {
      case UnitKind::BiFwd:
      case UnitKind::BiBwd: return {E, H / 2};
      case UnitKind::Enc: return {H, H};
      case UnitKind::Dec: return {x.index == 0 ? E : 2 * H, H};
      case UnitKind::Attention: return {0, 0};
    }
    return {0, 0};
  };
  auto cost = [&](int u, std::int64_t ch) {
    const auto& x = units[std::size_t(u)];
    const auto [in, w] = widths(x);
    return costs.forward(x, steps(ch), in, w);
  };
  auto bcost = [&](int u, std::int64_t ch) {
    const auto& x = units[std::size_t(u)];
    const auto [in, w] = widths(x);
    return costs.backward(x, steps(ch), in, w);
  };
  auto find = [&](UnitKind kind, int i) {
    for (int u = 0; u < U; ++u)
      if (units[std::size_t(u)].kind == kind && units[std::size_t(u)].index == i) return u;
    return -1;
  };
  // Inputs of each unit (producers), as in the executor.
  std::vector<std::vector<int>> parts(static_cast<std::size_t>(U));
  const int bif = find(UnitKind::BiFwd, 0), bib = find(UnitKind::BiBwd, 0), att = find(UnitKind::Attention, 0);
  const int enc_top = c.enc_layers >= 2 ? find(UnitKind::Enc, int(c.enc_layers - 1)) : bif;
  for (int u = 0; u < U; ++u) {
    const auto& x = units[std::size_t(u)];
    if (x.kind == UnitKind::Enc) parts[std::size_t(u)] = x.index == 1 ? std::vector<int>{bif, bib} : std::vector<int>{find(UnitKind::Enc, x.index - 1)};
    if (x.kind == UnitKind::Dec && x.index > 0) parts[std::size_t(u)] = {find(UnitKind::Dec, x.index - 1), att};
    if (x.kind == UnitKind::Attention) parts[std::size_t(u)] = {find(UnitKind::Dec, 0)};
  }
  WavefrontModel m;
  m.busy.assign(std::size_t(k), 0.0);
  std::vector<double> free(static_cast<std::size_t>(k), 0.0);
  std::map<std::pair<int, std::int64_t>, double> done;  // (unit, chunk) → end time
  // Forward. Ranks run concurrently: iterate until every task is scheduled (a task waits for its inputs' chunks).
  std::vector<std::vector<std::pair<int, std::int64_t>>> order(static_cast<std::size_t>(k));
  for (int u = 0; u < U; ++u) {
    const auto& x = units[std::size_t(u)];
    for (std::int64_t kk = 0; kk < n; ++kk) order[std::size_t(x.rank)].push_back({u, x.kind == UnitKind::BiBwd ? n - 1 - kk : kk});
  }
  auto ready_fwd = [&](int u, std::int64_t ch, double& t) {
    for (int p : parts[std::size_t(u)]) {
      auto it = done.find({p, ch});
      if (it == done.end()) return false;
      t = std::max(t, it->second);
    }
    if (u == att)
      for (std::int64_t q = 0; q < n; ++q) {
        auto it = done.find({enc_top, q});
        if (it == done.end()) return false;
        t = std::max(t, it->second);
      }
    return true;
  };
  std::vector<std::size_t> next(static_cast<std::size_t>(k), 0);
  for (bool progress = true; progress;) {
    progress = false;
    for (int r = 0; r < k; ++r) {
      auto& q = order[std::size_t(r)];
      while (next[std::size_t(r)] < q.size()) {
        const auto [u, ch] = q[next[std::size_t(r)]];
        double t = free[std::size_t(r)];
        if (!ready_fwd(u, ch, t)) break;
        const double d = cost(u, ch);
        done[{u, ch}] = t + d;
        free[std::size_t(r)] = t + d;
        m.busy[std::size_t(r)] += d;
        ++next[std::size_t(r)];
        progress = true;
      }
    }
  }
  // The generator on every rank after the last decoder chunk (and the group's reductions: a barrier).
  double t_gen = *std::max_element(free.begin(), free.end());
  for (int r = 0; r < k; ++r) {
    free[std::size_t(r)] = t_gen + costs.generator;  // forward + backward of the generator shard
    m.busy[std::size_t(r)] += costs.generator;
  }
  // Backward: units in reverse order, chunks reversed; a producer's chunk waits for its consumers' same chunk.
  std::map<std::pair<int, std::int64_t>, double> bdone;
  std::vector<std::vector<int>> consumers(static_cast<std::size_t>(U));
  for (int u = 0; u < U; ++u)
    for (int p : parts[std::size_t(u)]) consumers[std::size_t(p)].push_back(u);
  consumers[std::size_t(enc_top)].push_back(att);
  std::vector<std::vector<std::pair<int, std::int64_t>>> border(static_cast<std::size_t>(k));
  for (int u = U - 1; u >= 0; --u) {
    const auto& x = units[std::size_t(u)];
    for (std::int64_t kk = 0; kk < n; ++kk) border[std::size_t(x.rank)].push_back({u, x.kind == UnitKind::BiBwd ? kk : n - 1 - kk});
  }
  auto ready_bwd = [&](int u, std::int64_t ch, double& t) {
    for (int cu : consumers[std::size_t(u)]) {
      if (cu == att && u == enc_top) {  // dK: after every attention chunk
        for (std::int64_t q = 0; q < n; ++q) {
          auto it = bdone.find({att, q});
          if (it == bdone.end()) return false;
          t = std::max(t, it->second);
        }
        continue;
      }
      auto it = bdone.find({cu, ch});
      if (it == bdone.end()) return false;
      t = std::max(t, it->second);
    }
    return true;
  };
  std::fill(next.begin(), next.end(), 0);
  for (bool progress = true; progress;) {
    progress = false;
    for (int r = 0; r < k; ++r) {
      auto& q = border[std::size_t(r)];
      while (next[std::size_t(r)] < q.size()) {
        const auto [u, ch] = q[next[std::size_t(r)]];
        double t = free[std::size_t(r)];
        if (!ready_bwd(u, ch, t)) break;
        const double d = bcost(u, ch);
        bdone[{u, ch}] = t + d;
        free[std::size_t(r)] = t + d;
        m.busy[std::size_t(r)] += d;
        ++next[std::size_t(r)];
        progress = true;
      }
    }
  }
  m.makespan = *std::max_element(free.begin(), free.end());
  for (int r = 0; r < k; ++r) m.idle.push_back(m.makespan - m.busy[std::size_t(r)]);
  return m;
}

}  // namespace partrain::parallel::nmt
