// `vendor`: the MPI library's own nonblocking collectives (MPI_Iallreduce, …) behind the same Request.
// The library's traffic cannot be observed, so the counters get the bytes a bandwidth-optimal algorithm must
// move per rank (nccl-tests' bus bytes), documented as modelled, not measured.
#pragma once

#include <mpi.h>

#include <vector>

#include "partrain/collectives/counters.hpp"
#include "partrain/collectives/request.hpp"
#include "scratch.hpp"

namespace partrain::coll {

class VendorRequest : public RequestState {
 public:
  VendorRequest() = default;
  bool test() override;

  MPI_Request req = MPI_REQUEST_NULL;
  std::vector<int> counts, displs;  ///< must live until completion (reduce_scatter, allgatherv)
  ScratchPool::Lease lease;         ///< a staged input, where MPI's in-place convention differs from ours
};

/// MPI's type for dt (a 2-byte derived type for bf16 and fp16) and the reduction for it (MPI_SUM/MPI_MAX, or a user
/// operation computing in fp32 for the 16-bit types).
MPI_Datatype mpi_type(DataType dt);
MPI_Op mpi_op(ReduceOp op, DataType dt);
/// Adds the modelled bytes of one call of `op` on `bytes` bytes over n ranks.
void count_vendor(OpCounters& c, Op op, std::int64_t bytes, int n);

}  // namespace partrain::coll
