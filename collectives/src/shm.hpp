// Intra-node shared-memory collectives (the `shm` algorithm), for a communicator whose ranks share one node.
//
// Private-buffer mode. Each rank owns, in an MPI-3 shared window, a small ring of S slots (chunk bytes each) for
// staged input and S for reduced results, plus three flags per slot: staged, reduced, consumed. A vector is
// processed in chunks; chunk k carries epoch e = E0 + k (a counter shared by all calls on the communicator, so
// every rank numbers the same chunk the same way) and uses slot e mod S:
//   stage    wait until every rank has consumed the slot's previous chunk (epoch e − S); copy into this rank's
//            staged slot the parts of its input the others reduce (its own part it reads in place); publish
//            staged = e (release)
//   reduce   (allreduce, reduce_scatter) wait for every rank's staged ≥ e (acquire); reduce this rank's share of
//            the chunk over all ranks in rank order (so every rank gets the same bits) in one pass into its
//            output and, for allreduce, its result slot; publish reduced = e
//   gather   (allreduce, allgather, broadcast) copy each other owner's part from its result or staged slot into
//            the output once that owner has published it
//   consume  publish consumed = e
// Per rank and message byte, 2-rank allreduce: the input read once, the output written once, half a byte staged,
// half a byte of result published, one byte read from the peer's slots. Outputs that overflow the last-level
// cache are written with non-temporal stores (no read-for-ownership). Slots start on page boundaries (the
// prefetchers stop there). Flags are 64-byte apart and compared wrap-safe, so the epoch counter may wrap around.
//
// Zero-copy mode. A communicator can hand out buffers that live in a shared window (shared_buffer()); an
// allreduce in place on such a buffer reads every rank's buffer directly and writes each share's sum into all of
// them in the same pass: one cache fill per message byte, two flag rounds (arrived, done), no staging.
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

  /// True when a call's outputs should be written with non-temporal stores: when its buffers on all the node's
  /// ranks (about 2 · size · bytes) overflow the last-level cache, so the outputs would be evicted anyway.
  bool streams(std::int64_t bytes) const { return 2 * std::int64_t(size_) * bytes > llc_bytes_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  std::int64_t chunk_bytes() const { return chunk_; }

  ShmFlag& staged(int r, int s) { return area(r).flags[s]; }
  ShmFlag& reduced(int r, int s) { return area(r).flags[kSlots + s]; }
  ShmFlag& consumed(int r, int s) { return area(r).flags[2 * kSlots + s]; }
  ShmFlag& zc_arrived(int r) { return area(r).flags[3 * kSlots]; }
  ShmFlag& zc_done(int r) { return area(r).flags[3 * kSlots + 1]; }
  char* staged_data(int r, int s) { return base_[r] + kFlagBytes + std::int64_t(s) * chunk_; }
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
  /// The slots start on a page of their own and the chunk is a multiple of the page: the hardware prefetchers,
  /// which stop at page boundaries, then do not pull in lines of a slot a peer is writing while this rank reads
  /// the one before it (with 32 KiB chunks on 1664-byte offsets the 2-rank allreduce ran at 2 GB/s instead of 6).
  static constexpr std::int64_t kPage = 4096;
  static constexpr std::int64_t kFlagBytes = (std::int64_t(sizeof(Area)) + kPage - 1) / kPage * kPage;
  Area& area(int r) { return *reinterpret_cast<Area*>(base_[r]); }

  MPI_Win win_ = MPI_WIN_NULL;
  int rank_ = 0, size_ = 1;
  std::int64_t chunk_, llc_bytes_;
  std::vector<char*> base_;  ///< each rank's part, from its first page boundary
  char* mine_ = nullptr;      ///< this rank's part as allocated
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
