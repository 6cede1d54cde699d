// Timers that measure device work honestly: Kokkos::fence before every clock read, so asynchronous kernels
// (CUDA) are finished before the time is taken. On the Serial backend the fence costs nothing.
#pragma once

#include <Kokkos_Core.hpp>

#include <chrono>

namespace partrain {

/// Seconds since an arbitrary epoch, monotonic; no fence.
inline double wall_time_s() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

/// Fences the device, then reads the clock.
inline double fenced_time_s() {
  Kokkos::fence();
  return wall_time_s();
}

/// Accumulates the fenced time of repeated start/stop intervals (a phase of a step).
class PhaseTimer {
 public:
  void start() { t0_ = fenced_time_s(); }
  /// Ends the interval; returns its length and adds it to the total.
  double stop() {
    const double dt = fenced_time_s() - t0_;
    total_s_ += dt;
    return dt;
  }
  double total_s() const { return total_s_; }
  void reset() { total_s_ = 0; }

 private:
  double t0_ = 0, total_s_ = 0;
};

/// RAII interval on a PhaseTimer.
class ScopedPhase {
 public:
  explicit ScopedPhase(PhaseTimer& t) : t_(t) { t_.start(); }
  ~ScopedPhase() { t_.stop(); }
  ScopedPhase(const ScopedPhase&) = delete;
  ScopedPhase& operator=(const ScopedPhase&) = delete;

 private:
  PhaseTimer& t_;
};

}  // namespace partrain
