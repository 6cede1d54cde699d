// The NCCL implementation of Communicator (compiled when CUDA and NCCL are found; used on GPU machines).
// Buffers are device pointers. Operations run on the communicator's own stream, which is a blocking stream:
// ordered after work the caller put on the legacy default stream. Every operation is NCCL's own (`vendor`; `auto` resolves to it, the suite's
// MPI algorithms are refused with an InputError). Calls are enqueued on the communicator's stream; the request
// records a CUDA event after them and test() polls it (cudaEventQuery), so progress needs no host thread.
// Counts that do not divide by the rank count use grouped ncclReduce / ncclBroadcast per block; alltoall is
// grouped ncclSend/ncclRecv. NCCL has no tags: send/recv between a pair of ranks match in call order.
#pragma once

#include <mpi.h>

#include <memory>

#include "partrain/collectives/communicator.hpp"

namespace partrain::coll {

class NcclCommunicator : public Communicator {
 public:
  /// True when a CUDA device is visible to this process.
  static bool available();
  /// An NCCL communicator over the ranks of `comm` (the unique id travels by MPI_Bcast), on CUDA device
  /// (node-local rank mod device count). Collective over comm.
  static std::unique_ptr<NcclCommunicator> create(MPI_Comm comm);
  ~NcclCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "nccl"; }
  int device() const { return device_; }
  /// The cudaStream_t the operations run on (as void*, so this header needs no CUDA include).
  void* stream() const { return stream_; }

  Algo resolve(Op op, Algo algo, std::int64_t bytes) const override;
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
  NcclCommunicator() = default;
  Request enqueued();  ///< a request completing when the stream reaches this point
  void* scratch(std::int64_t bytes);

  void* comm_ = nullptr;    ///< ncclComm_t
  void* stream_ = nullptr;  ///< cudaStream_t
  void* scratch_ = nullptr;
  std::int64_t scratch_bytes_ = 0;
  int rank_ = 0, size_ = 1, device_ = 0;
};

}  // namespace partrain::coll
