// Collectives on device buffers over a communicator that needs host memory (MPI without GPU support): the
// host-staged path, for ranks that share a GPU or have no NCCL (docs/gpu.md).
//
// Every operation copies its input from the device into a host staging buffer, runs the inner communicator's
// operation in place on that buffer, and copies the result back to the device when the operation completes (in
// the request's test() or wait(); nothing is written to the output before). The copies go through a DeviceCopier:
// cudaMemcpy in a CUDA build; memcpy in a host build, where "device" memory is host memory — which is how the path is
// tested on machines without a GPU. Staging buffers come from a pool, reused once warm. The copies are counted
// (staged_bytes: device → host plus host → device), as the user pays them; the inner communicator counts the
// messages. Not yet: copies overlapped with the ring's chunks (each operation copies its whole input first).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "partrain/collectives/communicator.hpp"

namespace partrain::coll {

/// Copies between device and host memory (`bytes` may be 0), and the host memory to stage in.
class DeviceCopier {
 public:
  virtual ~DeviceCopier() = default;
  virtual void to_host(void* host, const void* device, std::int64_t bytes) = 0;
  virtual void to_device(void* device, const void* host, std::int64_t bytes) = 0;
  /// Staging memory: plain in a host build, pinned (page-locked, what the copy engines read at full speed) with CUDA.
  virtual void* allocate_host(std::int64_t bytes);
  virtual void free_host(void* p);
  /// "memcpy" (host build) or "cudaMemcpy".
  virtual const char* name() const = 0;
};

/// memcpy: device memory is host memory (a host build), so the staged path runs, and is tested, without a GPU.
std::unique_ptr<DeviceCopier> host_copier();
/// cudaMemcpy with pinned staging buffers, in a CUDA build of Kokkos (PARTRAIN_CUDA_COPIER); null otherwise.
std::unique_ptr<DeviceCopier> cuda_copier();

class StagedCommunicator : public Communicator {
 public:
  /// `inner` must outlive this communicator.
  StagedCommunicator(Communicator& inner, std::unique_ptr<DeviceCopier> copier);
  ~StagedCommunicator() override;

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  const char* backend() const override { return "staged"; }
  Algo resolve(Op op, Algo algo, std::int64_t bytes) const override { return inner_.resolve(op, algo, bytes); }

  Request allreduce(const void* send, void* recv, std::int64_t count, DataType dt, ReduceOp op,
                    Algo algo = Algo::Auto) override;
  Request reduce_scatter(const void* send, void* recv, std::int64_t count, DataType dt, ReduceOp op,
                         Algo algo = Algo::Auto) override;
  Request allgather(const void* send, void* recv, std::int64_t count, DataType dt, Algo algo = Algo::Auto) override;
  Request broadcast(void* buf, std::int64_t count, DataType dt, int root, Algo algo = Algo::Auto) override;
  Request alltoall(const void* send, void* recv, std::int64_t count, DataType dt, Algo algo = Algo::Auto) override;
  Request alltoallv(const void* send, const std::int64_t* send_counts, void* recv, const std::int64_t* recv_counts,
                    DataType dt, Algo algo = Algo::Auto) override;
  Request barrier(Algo algo = Algo::Auto) override { return inner_.barrier(algo); }
  Request send(const void* buf, std::int64_t count, DataType dt, int peer, int tag) override;
  Request recv(void* buf, std::int64_t count, DataType dt, int peer, int tag) override;
  using Communicator::allgather;
  using Communicator::allreduce;
  using Communicator::alltoall;
  using Communicator::alltoallv;
  using Communicator::broadcast;
  using Communicator::reduce_scatter;

  /// Bytes copied between device and host so far (both directions).
  std::int64_t staged_bytes() const { return staged_bytes_; }
  /// Staging buffers allocated so far (the pool: constant once warm).
  std::int64_t staging_allocations() const { return allocations_; }

 private:
  struct Buffer;
  Buffer* acquire(std::int64_t bytes);
  /// Wraps the inner request: on completion, `finish` copies back and the buffer returns to the pool.
  Request staged(Request inner, Buffer* buf, std::function<void(char*)> finish, const char* what);
  void sync_counters() { counters_ = inner_.counters(); }

  Communicator& inner_;
  std::unique_ptr<DeviceCopier> copier_;
  std::vector<std::unique_ptr<Buffer>> pool_;
  std::int64_t staged_bytes_ = 0, allocations_ = 0;
};

}  // namespace partrain::coll
