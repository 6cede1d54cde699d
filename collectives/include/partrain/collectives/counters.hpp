// Per-rank traffic counters for every operation: bytes sent, bytes received, calls. The suite's own algorithms
// count each message they post; the vendor algorithm cannot see inside the library and counts the bytes a
// bandwidth-optimal algorithm must move (the nccl-tests bus bytes: allreduce 2(n−1)/n·N each way, etc.).
#pragma once

#include <array>
#include <cstdint>

#include "partrain/collectives/types.hpp"

namespace partrain::coll {

struct OpCounters {
  std::int64_t bytes_sent = 0, bytes_received = 0, calls = 0;
};

class Counters {
 public:
  OpCounters& operator[](Op op) { return ops_[static_cast<int>(op)]; }
  const OpCounters& operator[](Op op) const { return ops_[static_cast<int>(op)]; }
  void reset() { ops_ = {}; }

 private:
  std::array<OpCounters, kNumOps> ops_{};
};

}  // namespace partrain::coll
