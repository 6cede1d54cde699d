// The update modes' decisions as pure functions of what the server or the worker knows — the part of the parameter
// server that makes asp, ssp and the delayed buffer what they are — so that tests check them case by case, whatever
// order messages happen to arrive in (the end-to-end runs can only bound what every order guarantees).
#pragma once

#include <cstdint>
#include <limits>

#include "partrain/parallel/ps/layout.hpp"

namespace partrain::parallel::ps {

/// No active worker to bound by (every worker removed, or none pushed yet on this shard).
constexpr std::int64_t kNoSlowest = std::numeric_limits<std::int64_t>::max();

struct PullVerdict {
  bool answer = false;         ///< reply now
  bool held_by_bound = false;  ///< ssp: the pull is ready but the slowest worker is more than s clocks behind
};

/// A pull for clock `clock` by a worker that has pushed `pushes` times, of which `own_applied` are applied here; the
/// shard is at `version`; `slowest`: the fewest pushes applied of any active worker (kNoSlowest: none).
///   synchronous modes (bsp, half_sync, local)  answer once the shard reached the clock: version >= clock
///   asp   answer once this worker's own pushes are applied (read your writes), never bounded
///   ssp   as asp, and held while slowest < clock - s (s = 0: every worker pushed clock - 1 first)
inline PullVerdict pull_verdict(Mode mode, std::int64_t s, std::int64_t version, std::int64_t own_applied,
                                std::int64_t pushes, std::int64_t clock, std::int64_t slowest) {
  PullVerdict v;
  v.answer = synchronous(mode) ? version >= clock : own_applied >= pushes;
  if (v.answer && mode == Mode::Ssp && slowest != kNoSlowest && slowest < clock - s) {
    v.answer = false;
    v.held_by_bound = true;
  }
  return v;
}

/// The clock gap a pull answered at `clock` shows: how far ahead of the slowest worker its reader is (0 in
/// synchronous modes, where nobody runs ahead).
inline std::int64_t clock_gap(Mode mode, std::int64_t clock, std::int64_t slowest) {
  if (synchronous(mode) || slowest == kNoSlowest) return 0;
  return clock > slowest ? clock - slowest : 0;
}

/// The delayed buffer (ps.delay_buffer = D): a worker `lag` mini-batches behind the fastest, holding `held` gradients
/// (this one included), keeps holding while it is more than D behind and holds at most D; otherwise it pushes all it
/// holds as one (so one push carries at most D + 1 mini-batches).
inline bool keep_holding(std::int64_t lag, std::int64_t held, std::int64_t D) { return lag > D && held <= D; }

}  // namespace partrain::parallel::ps
