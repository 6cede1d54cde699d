// Intra-node shared-memory collectives (the `shm` algorithm), for a communicator whose ranks share one node.
//
// Private-buffer mode. Each rank owns, in an MPI-3 shared window, a small ring of S slots (chunk bytes each) for
// staged input and S for reduced results, plus three flags per slot: staged, reduced, consumed. A vector is
// processed in chunks; chunk k carries epoch e = E0 + k (a counter shared by all calls on the communicator, so
// every rank numbers the same chunk the same way) and uses slot e mod S:
//   stage    wait until every rank has consumed the slot's previous chunk (epoch e − S); copy this rank's input
//            for the chunk into its staged slot; publish staged = e (release)
//   reduce   (allreduce, reduce_scatter) wait for every rank's staged ≥ e (acquire); reduce this rank's share of
//            the chunk over all ranks in rank order (so every rank gets the same bits) into its result slot
//            (allreduce) or straight into the output (reduce_scatter); publish reduced = e
//   gather   (allreduce, allgather, broadcast) copy each owner's part from its result or staged slot into the
//            output once that owner has published it
//   consume  publish consumed = e
// About three cache fills per message byte (stage, reduce, gather): the bound quoted in the issue (~9 GB/s on the
// build machine). Flags are 64-byte apart and compared wrap-safe, so the epoch counter may wrap around.
//
// Zero-copy mode. A communicator can hand out buffers that live in a shared window (shared_buffer()); an
// allreduce in place on such a buffer reads every rank's buffer directly and writes each share's sum into all of
// them: one pass, two flag rounds (arrived, done), no staging.
//
// Every wait spins on an acquire load and yields under the yield policy (oversubscribed nodes).
#pragma once

#include <mpi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "partrain/collectives/counters.hpp"
#include "partrain/collectives/request.hpp"

namespace partrain::coll {

struct alignas(64) ShmFlag {
  std::atomic<std::uint64_t> v;
  char pad[64 - sizeof(std::atomic<std::uint64_t>)];
};

/// True when a is at or after b on the wrapping epoch counter.
inline bool epoch_reached(std::uint64_t a, std::uint64_t b) { return std::int64_t(a - b) >= 0; }

class ShmNode {
 public:
  static constexpr int kSlots = 8;
  /// Collective over comm, whose ranks must share a node. `first_epoch` is for tests of wrap-around.
  ShmNode(MPI_Comm comm, std::int64_t chunk_bytes, std::uint64_t first_epoch = 1);
  ~ShmNode();
  ShmNode(const ShmNode&) = delete;
  ShmNode& operator=(const ShmNode&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  std::int64_t chunk_bytes() const { return chunk_; }

  ShmFlag& staged(int r, int s) { return area(r).flags[s]; }
  ShmFlag& reduced(int r, int s) { return area(r).flags[kSlots + s]; }
  ShmFlag& consumed(int r, int s) { return area(r).flags[2 * kSlots + s]; }
  ShmFlag& zc_arrived(int r) { return area(r).flags[3 * kSlots]; }
  ShmFlag& zc_done(int r) { return area(r).flags[3 * kSlots + 1]; }
  char* staged_data(int r, int s) { return base_[r] + sizeof(Area) + std::size_t(s) * std::size_t(chunk_); }
  char* result_data(int r, int s) { return staged_data(r, kSlots) + std::size_t(s) * std::size_t(chunk_); }

  /// Reserves `chunks` consecutive epochs for one call, in call order; returns the first.
  std::uint64_t reserve(std::int64_t chunks) {
    const auto e = next_epoch_;
    next_epoch_ += std::uint64_t(chunks);
    return e;
  }
  std::uint64_t reserve_zero_copy() { return ++zc_epoch_; }
  /// Zero-copy calls publish "done" in call order (the flag is one counter): the last one this rank published.
  std::uint64_t zc_published = 0;

 private:
  struct Area {
    ShmFlag flags[3 * kSlots + 2];
  };
  Area& area(int r) { return *reinterpret_cast<Area*>(base_[r]); }

  MPI_Win win_ = MPI_WIN_NULL;
  int rank_ = 0, size_ = 1;
  std::int64_t chunk_;
  std::vector<char*> base_;
  std::uint64_t next_epoch_, zc_epoch_ = 0;
};

/// A buffer in a shared window: this rank's part, and every rank's (for the zero-copy allreduce).
struct ShmBuffer {
  MPI_Win win = MPI_WIN_NULL;
  std::vector<char*> parts;
  std::int64_t bytes = 0;
};

enum class ShmOp { Allreduce, ReduceScatter, Allgather, Broadcast };

/// The private-buffer state machine for one call (see the file comment).
std::unique_ptr<RequestState> make_shm_request(ShmNode& node, ShmOp op, const void* send, void* recv,
                                               std::int64_t count, DataType dt, ReduceOp rop, int root,
                                               OpCounters& ctr);
/// The zero-copy allreduce in place on `count` elements at parts[r] of every rank r (the same offset in each
/// rank's part of one shared buffer); parts[rank] is this rank's.
std::unique_ptr<RequestState> make_shm_zero_copy_allreduce(ShmNode& node, std::vector<char*> parts, std::int64_t count,
                                                           DataType dt, ReduceOp rop, OpCounters& ctr);

}  // namespace partrain::coll
