// The MPI implementation of Communicator: the suite's own algorithms (ring, recursive doubling / Rabenseifner,
// binomial tree) as schedules of point-to-point rounds, and `vendor` (the MPI library's MPI_I* collectives).
//
// `shm` (all ranks on one node; collectives/src/shm.hpp): staged through per-rank slots of a shared window,
// or, for an allreduce in place on a buffer from shared_buffer(), in one pass over every rank's buffer.
//
// `hier` (allreduce, ranks on several nodes with the same number each): shm reduce-scatter inside the node, ring
// allreduce of each block among the ranks with the same local index across nodes, shm allgather inside the node
// (Horovod's hierarchical allreduce). Nodes are the MPI shared-memory domains, or, to test it on one machine,
// groups of `pretend_ranks_per_node` consecutive ranks.
//
// `auto` (documented in docs/collectives.md):
//   all ranks on one node: shm for allreduce, reduce_scatter, allgather and broadcast;
//   several nodes of equal size with more than one rank each: hier for allreduce above 16 KiB; otherwise
//   allreduce       n = 1: copy; ≤ 16 KiB: recdbl (log n rounds); otherwise ring
//   reduce_scatter, allgather: ≤ 16 KiB: recdbl; otherwise ring
//   broadcast       ≤ 64 KiB: tree; otherwise ring (pipelined chain)
//   alltoall        ring (pairwise exchange);  barrier: recdbl (dissemination)
//
// Collectives run on a private duplicate of the communicator, each call with its own tag, so several can be in
// flight at once and never match each other's messages or the user's point-to-point traffic. Temporary buffers
// come from a pool of pre-touched buffers ("comm/scratch"), allocated once and reused: nothing is allocated per
// call once the pool has warmed up.
#pragma once

#include <mpi.h>

#include <memory>
#include <vector>

#include "partrain/collectives/communicator.hpp"

namespace partrain::coll {

class ScratchPool;
class ShmNode;
struct HierSequencer;
struct ShmBuffer;

class MpiCommunicator : public Communicator {
 public:
  /// Wraps (a duplicate of) `comm`. Collective over comm. pretend_ranks_per_node > 0 splits the ranks into
  /// "nodes" of that many consecutive ranks (inside the real ones), to exercise the multi-node algorithms here.
  explicit MpiCommunicator(MPI_Comm comm, int pretend_ranks_per_node = 0);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  /// Sub-communicator of the ranks with the same color, ordered by key (MPI_Comm_split). Collective.
  std::unique_ptr<MpiCommunicator> split(int color, int key) const;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "mpi"; }
  MPI_Comm comm() const { return p2p_; }

  /// Pipeline chunk of the ring algorithms (bytes, default 256 KiB): the unit of message and of reduction,
  /// small enough that a received chunk is reduced while it is still in cache.
  void set_chunk_bytes(std::int64_t bytes);
  std::int64_t chunk_bytes() const { return chunk_bytes_; }

  Algo resolve(Op op, Algo algo, std::int64_t bytes) const override;

  /// True when every rank of the communicator is on this node (the shm algorithm is available).
  bool single_node() const { return single_node_; }
  /// The ranks of this rank's node, and the ranks with the same local index on every node (null on one node or
  /// when the nodes differ in size).
  MpiCommunicator* node_comm() const { return node_.get(); }
  MpiCommunicator* cross_comm() const { return cross_.get(); }
  /// A buffer of `bytes` bytes in a window shared by the node's ranks (zero-filled; collective; freed with the
  /// communicator). An allreduce in place on (a range of) it with algorithm shm or auto runs zero-copy: every rank
  /// must pass the same offset into its own buffer.
  void* shared_buffer(std::int64_t bytes);
  /// Tests only: the shm epoch counter's first value (e.g. just below 2^64, to exercise wrap-around). Call before
  /// the first shm operation.
  void set_shm_first_epoch(std::uint64_t e) { shm_first_epoch_ = e; }

  Request allreduce(const void* send, void* recv, std::int64_t count, DataType dt, ReduceOp op,
                    Algo algo = Algo::Auto) override;
  Request reduce_scatter(const void* send, void* recv, std::int64_t count, DataType dt, ReduceOp op,
                         Algo algo = Algo::Auto) override;
  Request allgather(const void* send, void* recv, std::int64_t count, DataType dt, Algo algo = Algo::Auto) override;
  Request broadcast(void* buf, std::int64_t count, DataType dt, int root, Algo algo = Algo::Auto) override;
  Request alltoall(const void* send, void* recv, std::int64_t count, DataType dt, Algo algo = Algo::Auto) override;
  Request alltoallv(const void* send, const std::int64_t* send_counts, void* recv, const std::int64_t* recv_counts,
                    DataType dt, Algo algo = Algo::Auto) override;
  Request barrier(Algo algo = Algo::Auto) override;
  Request send(const void* buf, std::int64_t count, DataType dt, int peer, int tag) override;
  Request recv(void* buf, std::int64_t count, DataType dt, int peer, int tag) override;
  using Communicator::allgather;
  using Communicator::allreduce;
  using Communicator::alltoall;
  using Communicator::alltoallv;
  using Communicator::broadcast;
  using Communicator::reduce_scatter;

 private:
  int next_tag();
  ShmNode& shm();
  /// The shared buffer holding [p, p + bytes) in this rank's part, or null.
  const ShmBuffer* shared_owner(const void* p, std::int64_t bytes) const;

  MPI_Comm p2p_ = MPI_COMM_NULL, coll_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::int64_t chunk_bytes_ = 256 * 1024;
  int seq_ = 0;
  std::unique_ptr<ScratchPool> pool_;
  bool single_node_ = false;
  std::unique_ptr<ShmNode> shm_;
  std::uint64_t shm_first_epoch_ = 1;
  std::vector<std::unique_ptr<ShmBuffer>> shared_;
  std::unique_ptr<MpiCommunicator> node_, node_gather_, cross_;  // hier: reduce-scatters; allgathers; across
  std::unique_ptr<HierSequencer> hier_;                          // the order hier's calls post their steps in
};

}  // namespace partrain::coll
