// The suite's own algorithms are written as schedules: a list of rounds per rank, each round a set of messages
// (receives and sends, posted together) followed by local operations (reduce a received chunk, copy) that run
// once the round's messages have completed. ScheduleRequest executes a schedule as a state machine: test() posts
// the current round, checks it with MPI_Testall, runs its local operations and moves on — never blocking.
// Ranks may have different numbers of rounds (tree algorithms idle some ranks); messages match by order and tag.
#pragma once

#include <mpi.h>

#include <vector>

#include "partrain/collectives/counters.hpp"
#include "partrain/collectives/request.hpp"
#include "scratch.hpp"

namespace partrain::coll {

struct Transfer {
  int peer;
  char* ptr;
  std::int64_t bytes;
};

struct LocalOp {
  bool reduce;  ///< true: dst = a ⊕ b; false: dst = a (copy)
  char* dst;
  const char* a;
  const char* b;
  std::int64_t count;  ///< elements
};

struct Round {
  std::vector<Transfer> recvs, sends;
  std::vector<LocalOp> ops;
};

/// What the builders need to know about the call.
struct Plan {
  int rank = 0, n = 1;
  DataType dt = DataType::Float;
  ReduceOp op = ReduceOp::Sum;
  std::size_t esize = 4;
  std::int64_t chunk_elems = 65536;
  std::vector<Round> rounds;
  std::vector<ScratchPool::Lease> leases;

  char* at(const void* base, std::int64_t elems) const {
    return const_cast<char*>(static_cast<const char*>(base)) + elems * std::int64_t(esize);
  }
  Round& new_round() {
    rounds.emplace_back();
    return rounds.back();
  }
  /// Adds messages of `elems` elements, split where one message would exceed MPI's int count.
  void send(Round& r, int peer, const void* p, std::int64_t elems);
  void recv(Round& r, int peer, void* p, std::int64_t elems);
  void copy(Round& r, void* dst, const void* src, std::int64_t elems) {
    if (elems > 0 && dst != src) r.ops.push_back({false, static_cast<char*>(dst), static_cast<const char*>(src), nullptr, elems});
  }
  void reduce(Round& r, void* dst, const void* a, const void* b, std::int64_t elems) {
    if (elems > 0)
      r.ops.push_back({true, static_cast<char*>(dst), static_cast<const char*>(a), static_cast<const char*>(b), elems});
  }
  char* scratch(ScratchPool& pool, std::int64_t elems) {
    leases.push_back(pool.acquire(elems * std::int64_t(esize)));
    return leases.back().data();
  }
};

class ScheduleRequest : public RequestState {
 public:
  ScheduleRequest(MPI_Comm comm, int tag, Plan&& plan, OpCounters& counters);
  bool test() override;

 private:
  MPI_Comm comm_;
  int tag_;
  Plan plan_;
  OpCounters& counters_;
  std::size_t cur_ = 0;
  bool posted_ = false;
  std::vector<MPI_Request> reqs_;
};

}  // namespace partrain::coll
