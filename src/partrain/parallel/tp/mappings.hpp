// Tensor-parallel communication primitives (Megatron-LM's mappings), on 2D activations [rows, width] held on the
// host, over the tensor-parallel group. Every one is the identity on a group of one. They come in conjugate
// pairs — each one's backward is the other's forward:
//   copy_to_tp      f:  forward identity,                 backward allreduce      (ColumnParallelLinear input)
//   reduce_from_tp  g:  forward allreduce,                backward identity       (RowParallelLinear output)
// and, with sequence parallelism (activations outside the tensor-parallel regions are sharded by rows):
//   gather_rows         forward allgather of row shards,  backward reduce-scatter
//   reduce_scatter_rows forward reduce-scatter to shards, backward allgather
// Megatron's per-layer volume: 2 allreduces forward + 2 backward of b·s·h elements, each sending 2(t−1)/t of it
// (ring), i.e. 8·b·s·h·(t−1)/t elements per layer per microbatch; sequence parallelism replaces each allreduce by
// a reduce-scatter + allgather pair of the same total volume.
#pragma once

#include "partrain/collectives/mpi_communicator.hpp"
#include "partrain/core/timer.hpp"
#include "partrain/core/types.hpp"
#include "partrain/parallel/cp/context.hpp"

namespace partrain::parallel {

/// The tensor-parallel group, its algorithm, and traffic attributed to transformer blocks vs the rest; and, with
/// context parallelism, the context-parallel group splitting the sequences (parallel/cp/context.hpp).
struct TpContext {
  coll::MpiCommunicator* comm = nullptr;
  coll::Algo algo = coll::Algo::Ring;
  bool sequence_parallel = false;
  CpContext* cp = nullptr;  ///< null, or the context-parallel group (its size may be 1)
  std::int64_t block_bytes_sent = 0;  ///< sent by the mappings inside transformer blocks
  double comm_s = 0;                  ///< time spent in the mappings' collectives (fenced), all of them
  bool in_block = false;
  int size() const { return comm ? comm->size() : 1; }
  int rank() const { return comm ? comm->rank() : 0; }
  int cp_size() const { return cp ? cp->size() : 1; }
};

template <class T>
void tp_allreduce(TpContext& tp, const View2<T>& x, coll::ReduceOp op = coll::ReduceOp::Sum) {
  if (tp.size() == 1) return;
  const auto before = tp.comm->counters()[coll::Op::Allreduce].bytes_sent;
  const double t0 = fenced_time_s();
  tp.comm->allreduce(x.data(), x.data(), std::int64_t(x.size()), op, tp.algo).wait();
  tp.comm_s += wall_time_s() - t0;
  if (tp.in_block) tp.block_bytes_sent += tp.comm->counters()[coll::Op::Allreduce].bytes_sent - before;
}

/// full [rows, w] ← row shards [rows/t, w] of every rank (rank i's shard is rows i·rows/t …).
template <class T>
void tp_allgather_rows(TpContext& tp, const View2<T>& shard, const View2<T>& full) {
  if (tp.size() == 1) {
    if (shard.data() != full.data()) Kokkos::deep_copy(full, shard);
    return;
  }
  const auto before = tp.comm->counters()[coll::Op::Allgather].bytes_sent;
  const double t0 = fenced_time_s();
  tp.comm->allgather(shard.data(), full.data(), std::int64_t(full.size()), tp.algo).wait();
  tp.comm_s += wall_time_s() - t0;
  if (tp.in_block) tp.block_bytes_sent += tp.comm->counters()[coll::Op::Allgather].bytes_sent - before;
}

/// shard [rows/t, w] ← this rank's rows of Σ_ranks full [rows, w].
template <class T>
void tp_reduce_scatter_rows(TpContext& tp, const View2<T>& full, const View2<T>& shard) {
  if (tp.size() == 1) {
    if (shard.data() != full.data()) Kokkos::deep_copy(shard, full);
    return;
  }
  const auto before = tp.comm->counters()[coll::Op::ReduceScatter].bytes_sent;
  const double t0 = fenced_time_s();
  tp.comm->reduce_scatter(full.data(), shard.data(), std::int64_t(full.size()), coll::ReduceOp::Sum, tp.algo).wait();
  tp.comm_s += wall_time_s() - t0;
  if (tp.in_block) tp.block_bytes_sent += tp.comm->counters()[coll::Op::ReduceScatter].bytes_sent - before;
}

}  // namespace partrain::parallel
