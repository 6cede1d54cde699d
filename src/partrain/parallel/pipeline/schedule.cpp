#include "partrain/parallel/pipeline/schedule.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

namespace partrain::parallel::pipeline {

const char* name(ScheduleKind k) {
  switch (k) {
    case ScheduleKind::GPipe: return "gpipe";
    case ScheduleKind::OneFOneB: return "1f1b";
    case ScheduleKind::Interleaved: return "interleaved";
    default: return "zb";
  }
}

bool parse(const std::string& s, ScheduleKind& out) {
  for (auto k : {ScheduleKind::GPipe, ScheduleKind::OneFOneB, ScheduleKind::Interleaved, ScheduleKind::ZeroBubble})
    if (s == name(k)) {
      out = k;
      return true;
    }
  return false;
}

const char* short_name(ActionType t) {
  static const char* names[] = {"F", "B", "W", "RF", "SF", "RB", "SB"};
  return names[int(t)];
}

bool is_compute(ActionType t) {
  return t == ActionType::Forward || t == ActionType::Backward || t == ActionType::Weight;
}

bool splits_backward(ScheduleKind k) { return k == ScheduleKind::ZeroBubble; }

std::string why_not(const ScheduleSpec& s) {
  if (s.p < 1) return "pp.degree = " + std::to_string(s.p) + ": must be >= 1";
  if (s.m < 1) return "pp.microbatches = " + std::to_string(s.m) + ": must be >= 1";
  if (s.v < 1) return "pp.chunks = " + std::to_string(s.v) + ": must be >= 1";
  if (s.v > 1 && s.kind != ScheduleKind::Interleaved)
    return "pp.chunks = " + std::to_string(s.v) + ": only the interleaved schedule runs several model chunks per stage";
  if (s.kind == ScheduleKind::Interleaved && s.m % s.p != 0)
    return "pp.microbatches = " + std::to_string(s.m) + ": must be a multiple of pp.degree = " + std::to_string(s.p) +
           " for the interleaved schedule";
  return "";
}

namespace {
Action F(int mb, int c = 0) { return {ActionType::Forward, mb, c}; }
Action B(int mb, int c = 0) { return {ActionType::Backward, mb, c}; }
Action W(int mb, int c = 0) { return {ActionType::Weight, mb, c}; }

std::vector<Action> gpipe(const ScheduleSpec& s) {
  std::vector<Action> a;
  for (int k = 0; k < s.m; ++k) a.push_back(F(k));
  for (int k = 0; k < s.m; ++k) a.push_back(B(k));
  return a;
}

std::vector<Action> one_f_one_b(const ScheduleSpec& s, int stage) {
  std::vector<Action> a;
  const int warmup = std::min(s.p - stage - 1, s.m);
  int b = 0;
  for (int k = 0; k < warmup; ++k) a.push_back(F(k));  // warm-up
  for (int k = warmup; k < s.m; ++k) {                  // steady state: one forward, one backward
    a.push_back(F(k));
    a.push_back(B(b++));
  }
  while (b < s.m) a.push_back(B(b++));  // cool-down
  return a;
}

std::vector<Action> interleaved(const ScheduleSpec& s, int stage) {
  if (s.v == 1) return one_f_one_b(s, stage);
  const int p = s.p, v = s.v, total = s.m * v;
  // The k-th chunk-forward of a stage: microbatches go round in groups of p, chunk by chunk.
  auto fwd = [&](int k) { return F((k / (p * v)) * p + k % p, (k / p) % v); };
  auto bwd = [&](int k) { return B((k / (p * v)) * p + k % p, v - 1 - (k / p) % v); };
  const int warmup = std::min((p - stage - 1) * 2 + (v - 1) * p, total);
  std::vector<Action> a;
  int b = 0;
  for (int k = 0; k < warmup; ++k) a.push_back(fwd(k));
  for (int k = warmup; k < total; ++k) {
    a.push_back(fwd(k));
    a.push_back(bwd(b++));
  }
  while (b < total) a.push_back(bwd(b++));
  return a;
}

std::vector<Action> zero_bubble_h1(const ScheduleSpec& s, int stage) {
  // 1F1B with B and W apart; stage s keeps s weight passes pending (its W's run s microbatches late), which lifts
  // every stage to p microbatches in flight and leaves the W's to fill the cool-down's gaps.
  std::vector<Action> a;
  const int warmup = std::min(s.p - stage - 1, s.m);
  int b = 0, w = 0;
  auto backward = [&] {
    a.push_back(B(b++));
    if (b - w > stage) a.push_back(W(w++));
  };
  for (int k = 0; k < warmup; ++k) a.push_back(F(k));
  for (int k = warmup; k < s.m; ++k) {
    a.push_back(F(k));
    backward();
  }
  while (b < s.m) backward();
  while (w < s.m) a.push_back(W(w++));
  return a;
}
}  // namespace

std::vector<Action> compute_order(const ScheduleSpec& s, int stage) {
  switch (s.kind) {
    case ScheduleKind::GPipe: return gpipe(s);
    case ScheduleKind::OneFOneB: return one_f_one_b(s, stage);
    case ScheduleKind::Interleaved: return interleaved(s, stage);
    default: return zero_bubble_h1(s, stage);
  }
}

std::vector<Action> schedule(const ScheduleSpec& s, int stage) {
  const int last = s.chunks() - 1;
  std::vector<Action> out;
  for (const auto& a : compute_order(s, stage)) {
    const int c = a.chunk * s.p + stage;
    if (a.type == ActionType::Forward) {
      if (c > 0) out.push_back({ActionType::RecvForward, a.mb, a.chunk});
      out.push_back(a);
      if (c < last) out.push_back({ActionType::SendForward, a.mb, a.chunk});
    } else if (a.type == ActionType::Backward) {
      if (c < last) out.push_back({ActionType::RecvBackward, a.mb, a.chunk});
      out.push_back(a);
      if (c > 0) out.push_back({ActionType::SendBackward, a.mb, a.chunk});
    } else {
      out.push_back(a);
    }
  }
  return out;
}

std::string to_string(const std::vector<Action>& actions) {
  std::string s;
  for (const auto& a : actions)
    s += (s.empty() ? "" : " ") + std::string(short_name(a.type)) + std::to_string(a.mb) + "." + std::to_string(a.chunk);
  return s;
}

Costs unit_costs(const ScheduleSpec& s) {
  return splits_backward(s.kind) ? Costs{1, 1, 1} : Costs{1, 2, 0};
}

double Simulation::bubble_fraction() const {
  double sum = 0;
  for (double b : busy) sum += b;
  return makespan > 0 ? 1.0 - sum / (double(busy.size()) * makespan) : 0.0;
}

Simulation simulate(const ScheduleSpec& s, const std::vector<std::vector<Action>>& lists, const Costs& costs) {
  const int p = s.p, last = s.chunks() - 1;
  const bool split = splits_backward(s.kind);
  Simulation sim;
  sim.busy.assign(std::size_t(p), 0.0);
  sim.peak_inflight.assign(std::size_t(p), 0);
  using Key = std::tuple<int, int, int>;  // (action type, microbatch, model chunk)
  std::map<Key, double> done;             // compute end times
  std::map<Key, double> sent;             // (0: forward, 1: backward; mb; sender's model chunk) → time
  std::set<Key> received;                 // (0/1, mb, receiver's model chunk)
  std::vector<double> t(std::size_t(p), 0.0);
  std::vector<std::size_t> idx(std::size_t(p), 0);
  std::vector<int> inflight(std::size_t(p), 0);
  auto err = [&](int stage, const Action& a, const std::string& why) {
    sim.errors.push_back("stage " + std::to_string(stage) + ", " + short_name(a.type) + std::to_string(a.mb) + "." +
                         std::to_string(a.chunk) + ": " + why);
  };
  if (int(lists.size()) != p) {
    sim.errors.push_back("one action list per stage expected");
    return sim;
  }
  for (bool progress = true; progress;) {
    progress = false;
    for (int st = 0; st < p; ++st) {
      auto& i = idx[std::size_t(st)];
      double& now = t[std::size_t(st)];
      while (i < lists[std::size_t(st)].size()) {
        const Action& a = lists[std::size_t(st)][i];
        const int c = a.chunk * p + st;
        const double scale = 1.0 / double(s.v);
        bool stop = false;
        switch (a.type) {
          case ActionType::RecvForward:
          case ActionType::RecvBackward: {
            const bool fwd = a.type == ActionType::RecvForward;
            if ((fwd && c == 0) || (!fwd && c == last)) {
              err(st, a, "receives from a chunk that does not exist");
              break;
            }
            auto it = sent.find(Key{fwd ? 0 : 1, a.mb, fwd ? c - 1 : c + 1});
            if (it == sent.end()) {
              stop = true;  // wait for the send
              break;
            }
            now = std::max(now, it->second);
            if (!received.insert(Key{fwd ? 0 : 1, a.mb, c}).second) err(st, a, "received twice");
            break;
          }
          case ActionType::SendForward:
          case ActionType::SendBackward: {
            const bool fwd = a.type == ActionType::SendForward;
            if (!done.count(Key{int(fwd ? ActionType::Forward : ActionType::Backward), a.mb, c}))
              err(st, a, "sends before computing what it sends");
            if ((fwd && c == last) || (!fwd && c == 0)) err(st, a, "sends to a chunk that does not exist");
            if (!sent.emplace(Key{fwd ? 0 : 1, a.mb, c}, now).second) err(st, a, "sent twice");
            break;
          }
          case ActionType::Forward: {
            if (c > 0 && !received.count(Key{0, a.mb, c})) err(st, a, "runs before its input was received");
            auto prev = done.find(Key{int(ActionType::Forward), a.mb, c - 1});
            if (c > 0 && (prev == done.end() || prev->second > now)) err(st, a, "runs before the previous chunk's F");
            if (!done.emplace(Key{int(a.type), a.mb, c}, now + costs.f * scale).second) err(st, a, "runs twice");
            now += costs.f * scale;
            sim.busy[std::size_t(st)] += costs.f * scale;
            auto& n = inflight[std::size_t(st)];
            sim.peak_inflight[std::size_t(st)] = std::max(sim.peak_inflight[std::size_t(st)], ++n);
            break;
          }
          case ActionType::Backward: {
            if (!done.count(Key{int(ActionType::Forward), a.mb, c})) err(st, a, "runs before its F");
            if (c < last && !received.count(Key{1, a.mb, c})) err(st, a, "runs before its output gradient was received");
            if (!done.emplace(Key{int(a.type), a.mb, c}, now + costs.b * scale).second) err(st, a, "runs twice");
            now += costs.b * scale;
            sim.busy[std::size_t(st)] += costs.b * scale;
            if (!split) --inflight[std::size_t(st)];
            break;
          }
          case ActionType::Weight: {
            if (!split) err(st, a, "W in a schedule that does not split the backward");
            if (!done.count(Key{int(ActionType::Backward), a.mb, c})) err(st, a, "runs before its B");
            if (!done.emplace(Key{int(a.type), a.mb, c}, now + costs.w * scale).second) err(st, a, "runs twice");
            now += costs.w * scale;
            sim.busy[std::size_t(st)] += costs.w * scale;
            --inflight[std::size_t(st)];
            break;
          }
        }
        if (stop) break;
        ++i;
        progress = true;
      }
    }
  }
  sim.completed = true;
  for (int st = 0; st < p; ++st)
    if (idx[std::size_t(st)] < lists[std::size_t(st)].size()) {
      sim.completed = false;
      err(st, lists[std::size_t(st)][idx[std::size_t(st)]], "waits forever (deadlock)");
    }
  // Every microbatch ran F and B (and W) once on every model chunk, and every send was received.
  for (int c = 0; c <= last; ++c)
    for (int mb = 0; mb < s.m; ++mb) {
      for (auto type : {ActionType::Forward, ActionType::Backward, ActionType::Weight}) {
        if (type == ActionType::Weight && !split) continue;
        if (!done.count(Key{int(type), mb, c}))
          sim.errors.push_back(std::string(short_name(type)) + std::to_string(mb) + " of model chunk " +
                               std::to_string(c) + " never runs");
      }
      if (c < last && sent.count(Key{0, mb, c}) != received.count(Key{0, mb, c + 1}))
        sim.errors.push_back("activation of microbatch " + std::to_string(mb) + " from chunk " + std::to_string(c) +
                             ": send and receive do not match");
      if (c > 0 && sent.count(Key{1, mb, c}) != received.count(Key{1, mb, c - 1}))
        sim.errors.push_back("gradient of microbatch " + std::to_string(mb) + " from chunk " + std::to_string(c) +
                             ": send and receive do not match");
    }
  sim.makespan = *std::max_element(t.begin(), t.end());
  return sim;
}

Simulation simulate(const ScheduleSpec& s) {
  std::vector<std::vector<Action>> lists;
  for (int st = 0; st < s.p; ++st) lists.push_back(schedule(s, st));
  return simulate(s, lists, unit_costs(s));
}

double predicted_bubble_fraction(const ScheduleSpec& s) {
  const double p = s.p, m = s.m, v = s.v;
  switch (s.kind) {
    case ScheduleKind::GPipe:
    case ScheduleKind::OneFOneB: return (p - 1) / (m + p - 1);
    case ScheduleKind::Interleaved: return (p - 1) / (v * m + p - 1);
    default: return s.m >= s.p ? (p - 1) / (3 * m + p - 1) : simulate(s).bubble_fraction();
  }
}

}  // namespace partrain::parallel::pipeline
