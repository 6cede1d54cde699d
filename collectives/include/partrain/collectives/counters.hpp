// Per-rank traffic counters for every operation: bytes sent, bytes received, calls, and bus bytes. The suite's own
// algorithms count each message they post (what this algorithm moved: recursive doubling sends more than the ring, the
// shared-memory algorithm copies through the node's memory); the vendor algorithm cannot see inside the library and
// counts the bytes a bandwidth-optimal algorithm must move. `bus_bytes` is that figure for every algorithm alike —
// the nccl-tests bus bytes: allreduce 2(n−1)/n·N, reduce-scatter, allgather and all-to-all (n−1)/n·N, broadcast and
// point-to-point N — so that two strategies' traffic compares whatever algorithm each ran.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

#include "partrain/collectives/types.hpp"

namespace partrain::coll {

struct OpCounters {
  std::int64_t bytes_sent = 0, bytes_received = 0, calls = 0;
  std::int64_t bus_bytes = 0;  ///< algorithm-independent: the operation's size × busbw_factor
};

/// The bus bytes of one call of `op` on `bytes` (the whole vector) over `n` ranks: 0 on a group of one.
inline std::int64_t bus_bytes(Op op, std::int64_t bytes, int n) {
  return n > 1 ? std::llround(double(bytes) * busbw_factor(op, n)) : 0;
}

class Counters {
 public:
  OpCounters& operator[](Op op) { return ops_[static_cast<int>(op)]; }
  const OpCounters& operator[](Op op) const { return ops_[static_cast<int>(op)]; }
  void reset() { ops_ = {}; }
  /// Adds another communicator's counts (a trainer's several groups, reported as one).
  Counters& operator+=(const Counters& o) {
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      ops_[i].bytes_sent += o.ops_[i].bytes_sent;
      ops_[i].bytes_received += o.ops_[i].bytes_received;
      ops_[i].calls += o.ops_[i].calls;
      ops_[i].bus_bytes += o.ops_[i].bus_bytes;
    }
    return *this;
  }

 private:
  std::array<OpCounters, kNumOps> ops_{};
};

}  // namespace partrain::coll
