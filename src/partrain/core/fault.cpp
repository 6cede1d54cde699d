#include "partrain/core/fault.hpp"

#include <time.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <sstream>

#include "partrain/core/error.hpp"

namespace partrain {

FaultPlan::FaultPlan(const std::vector<std::string>& specs, int world) {
  for (const auto& spec : specs) {
    auto bad = [&](const std::string& why) { input_error("--inject", spec, why); };
    std::stringstream ss(spec);
    std::string kind, field;
    std::getline(ss, kind, ':');
    Fault f;
    if (kind == "kill") f.kind = Fault::Kill;
    else if (kind == "stall") f.kind = Fault::Stall;
    else if (kind == "slow") f.kind = Fault::Slow;
    else if (kind == "signal") f.kind = Fault::Signal;
    else if (kind == "join") f.kind = Fault::Join;
    else bad("unknown fault \"" + kind + "\" (kill, stall, slow, signal, join; KIND:rank=R:step=K[:ms=D])");
    bool has_rank = false, has_step = false;
    while (std::getline(ss, field, ':')) {
      const auto eq = field.find('=');
      if (eq == std::string::npos) bad("expected key=value, got \"" + field + "\"");
      const std::string key = field.substr(0, eq), value = field.substr(eq + 1);
      double v = 0;
      std::size_t used = 0;
      try {
        v = std::stod(value, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != value.size() || value.empty()) bad(key + " must be a number");
      if (key == "rank") {
        if (v < 0 || v >= world || v != double(int(v))) bad("rank must be one of the job's ranks 0.." + std::to_string(world - 1));
        f.rank = int(v);
        has_rank = true;
      } else if (key == "step") {
        if (v < 0 || v != double(std::int64_t(v))) bad("step must be an integer >= 0");
        f.step = std::int64_t(v);
        has_step = true;
      } else if (key == "ms") {
        if (v < 0) bad("ms must be >= 0");
        f.ms = v;
      } else if (key == "shard" && f.kind == Fault::Join) {
        if (v < 0 || v != double(int(v))) bad("shard must be an integer >= 0");
        f.shard = int(v);
      } else {
        bad("unknown key \"" + key + "\" (rank, step, ms" + (f.kind == Fault::Join ? ", shard" : "") + ")");
      }
    }
    if (!has_rank || !has_step) bad("needs rank=R and step=K");
    if (f.kind == Fault::Slow && f.ms <= 0) bad("slow needs ms=D > 0");
    faults_.push_back(f);
  }
}

bool FaultPlan::match(Fault::Kind k, int rank, std::int64_t step) const {
  for (const auto& f : faults_)
    if (f.kind == k && f.rank == rank && f.step == step) return true;
  return false;
}

double FaultPlan::slow_ms(int rank, std::int64_t step) const {
  double ms = 0;
  for (const auto& f : faults_)
    if (f.kind == Fault::Slow && f.rank == rank && step >= f.step) ms += f.ms;
  return ms;
}

void FaultPlan::signal_if_planned(int rank, std::int64_t step) const {
  if (!signals(rank, step)) return;
  std::fprintf(stderr, "[rank %d] fault injection: SIGUSR1 at step %lld\n", rank, (long long)step);
  std::fflush(stderr);
  std::raise(SIGUSR1);
}

namespace {
double g_planned_straggle_ms = 0;
}

void plan_straggle(double ms) { g_planned_straggle_ms = ms; }

void straggle() {
  const double ms = g_planned_straggle_ms;
  g_planned_straggle_ms = 0;
  if (ms <= 0) return;
  const timespec ts{time_t(ms / 1000), long(std::fmod(ms, 1000.0) * 1e6)};
  nanosleep(&ts, nullptr);
}

void FaultPlan::kill_if_planned(int rank, std::int64_t step) const {
  if (!kills(rank, step)) return;
  std::fprintf(stderr, "[rank %d] fault injection: kill at step %lld\n", rank, (long long)step);
  std::fflush(stderr);
  std::raise(SIGKILL);
}

std::string FaultPlan::describe() const {
  std::string s;
  for (const auto& f : faults_) {
    const char* k = f.kind == Fault::Kill ? "kill" : f.kind == Fault::Stall ? "stall" : f.kind == Fault::Slow ? "slow" : f.kind == Fault::Join ? "join" : "signal";
    s += (s.empty() ? "" : ", ") + std::string(k) + ":rank=" + std::to_string(f.rank) + ":step=" + std::to_string(f.step);
    if (f.kind == Fault::Slow) s += ":ms=" + std::to_string(int(f.ms));
    if (f.kind == Fault::Join && f.shard >= 0) s += ":shard=" + std::to_string(f.shard);
  }
  return s;
}

}  // namespace partrain
