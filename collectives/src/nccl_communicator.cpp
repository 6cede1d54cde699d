#include "partrain/collectives/nccl_communicator.hpp"

#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

#include "partrain/core/error.hpp"
#include "vendor.hpp"

#define PARTRAIN_CUDA_CHECK(call)                                                                      \
  do {                                                                                                 \
    cudaError_t partrain_cuda_rc_ = (call);                                                            \
    if (partrain_cuda_rc_ != cudaSuccess)                                                              \
      throw ::partrain::RuntimeError(::partrain::located_message(__FILE__, __LINE__, "CUDA call failed: " #call, \
                                                                 cudaGetErrorString(partrain_cuda_rc_)));  \
  } while (0)

#define PARTRAIN_NCCL_CHECK(call)                                                                      \
  do {                                                                                                 \
    ncclResult_t partrain_nccl_rc_ = (call);                                                           \
    if (partrain_nccl_rc_ != ncclSuccess)                                                              \
      throw ::partrain::RuntimeError(::partrain::located_message(__FILE__, __LINE__, "NCCL call failed: " #call, \
                                                                 ncclGetErrorString(partrain_nccl_rc_)));  \
  } while (0)

namespace partrain::coll {
namespace {

/// NCCL's native types; its 16-bit reductions accumulate in fp32 per step as ours do.
ncclDataType_t nccl_type(DataType dt) {
  switch (dt) {
    case DataType::Float: return ncclFloat32;
    case DataType::Double: return ncclFloat64;
    case DataType::BF16: return ncclBfloat16;
    case DataType::F16: return ncclFloat16;
  }
  return ncclFloat32;
}
ncclRedOp_t nccl_op(ReduceOp op) { return op == ReduceOp::Sum ? ncclSum : ncclMax; }
ncclComm_t as_comm(void* c) { return static_cast<ncclComm_t>(c); }
cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

class EventRequest : public RequestState {
 public:
  explicit EventRequest(cudaStream_t s) {
    PARTRAIN_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
    PARTRAIN_CUDA_CHECK(cudaEventRecord(event_, s));
  }
  ~EventRequest() override { cudaEventDestroy(event_); }
  bool test() override {
    const cudaError_t rc = cudaEventQuery(event_);
    if (rc == cudaErrorNotReady) return false;
    PARTRAIN_CUDA_CHECK(rc);
    return true;
  }

 private:
  cudaEvent_t event_{};
};

const char* ptr(const void* p, std::int64_t elems, DataType dt) {
  return static_cast<const char*>(p) + elems * std::int64_t(size_of(dt));
}

}  // namespace

bool NcclCommunicator::available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

std::unique_ptr<NcclCommunicator> NcclCommunicator::create(MPI_Comm comm) {
  std::unique_ptr<NcclCommunicator> c(new NcclCommunicator());
  PARTRAIN_MPI_CHECK(MPI_Comm_rank(comm, &c->rank_));
  PARTRAIN_MPI_CHECK(MPI_Comm_size(comm, &c->size_));
  MPI_Comm node;
  PARTRAIN_MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  int local = 0, devices = 0;
  PARTRAIN_MPI_CHECK(MPI_Comm_rank(node, &local));
  PARTRAIN_MPI_CHECK(MPI_Comm_free(&node));
  PARTRAIN_CUDA_CHECK(cudaGetDeviceCount(&devices));
  c->device_ = local % devices;
  PARTRAIN_CUDA_CHECK(cudaSetDevice(c->device_));
  cudaStream_t s;
  // A blocking stream: it is ordered after work on the legacy default stream (a cudaMemcpy or a kernel launched
  // there before the collective), which a non-blocking stream is not — a race seen on an H100 as zeros read.
  PARTRAIN_CUDA_CHECK(cudaStreamCreate(&s));
  c->stream_ = s;
  ncclUniqueId id;
  if (c->rank_ == 0) PARTRAIN_NCCL_CHECK(ncclGetUniqueId(&id));
  PARTRAIN_MPI_CHECK(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, comm));
  ncclComm_t nc;
  PARTRAIN_NCCL_CHECK(ncclCommInitRank(&nc, c->size_, id, c->rank_));
  c->comm_ = nc;
  return c;
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_) ncclCommDestroy(as_comm(comm_));
  if (scratch_) cudaFree(scratch_);
  if (stream_) cudaStreamDestroy(as_stream(stream_));
}

Algo NcclCommunicator::resolve(Op op, Algo algo, std::int64_t) const {
  if (algo != Algo::Auto && algo != Algo::Vendor)
    input_error("algorithm", name(algo), std::string("is not available on the nccl backend (use vendor or auto) for ") + name(op));
  return Algo::Vendor;
}

Request NcclCommunicator::enqueued() { return Request(std::make_unique<EventRequest>(as_stream(stream_))); }

void* NcclCommunicator::scratch(std::int64_t bytes) {
  if (bytes > scratch_bytes_) {  // grown on first need, then reused: no allocation per call
    PARTRAIN_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream_)));
    if (scratch_) PARTRAIN_CUDA_CHECK(cudaFree(scratch_));
    PARTRAIN_CUDA_CHECK(cudaMalloc(&scratch_, std::size_t(bytes)));
    scratch_bytes_ = bytes;
  }
  return scratch_;
}

Request NcclCommunicator::allreduce(const void* send, void* recv, std::int64_t count, DataType dt, ReduceOp op,
                                    Algo algo) {
  resolve(Op::Allreduce, algo, 0);
  auto& ctr = counters_[Op::Allreduce];
  ++ctr.calls;
  count_vendor(ctr, Op::Allreduce, count * std::int64_t(size_of(dt)), size_);
  ctr.bus_bytes += bus_bytes(Op::Allreduce, count * std::int64_t(size_of(dt)), size_);
  PARTRAIN_NCCL_CHECK(ncclAllReduce(send, recv, std::size_t(count), nccl_type(dt), nccl_op(op), as_comm(comm_),
                                    as_stream(stream_)));
  return enqueued();
}

Request NcclCommunicator::reduce_scatter(const void* send, void* recv, std::int64_t count, DataType dt,
                                         ReduceOp op, Algo algo) {
  resolve(Op::ReduceScatter, algo, 0);
  auto& ctr = counters_[Op::ReduceScatter];
  ++ctr.calls;
  count_vendor(ctr, Op::ReduceScatter, count * std::int64_t(size_of(dt)), size_);
  ctr.bus_bytes += bus_bytes(Op::ReduceScatter, count * std::int64_t(size_of(dt)), size_);
  const bool in_place = send == recv;
  const std::int64_t off = block_offset(count, size_, rank_);
  void* out = in_place ? const_cast<char*>(ptr(recv, off, dt)) : recv;
  if (count % size_ == 0) {
    PARTRAIN_NCCL_CHECK(ncclReduceScatter(send, out, std::size_t(count / size_), nccl_type(dt), nccl_op(op),
                                          as_comm(comm_), as_stream(stream_)));
  } else {  // uneven blocks: one ncclReduce per block, rooted at its owner
    PARTRAIN_NCCL_CHECK(ncclGroupStart());
    for (int i = 0; i < size_; ++i) {
      void* dst = i == rank_ ? out : nullptr;
      PARTRAIN_NCCL_CHECK(ncclReduce(ptr(send, block_offset(count, size_, i), dt), dst,
                                     std::size_t(block_count(count, size_, i)), nccl_type(dt), nccl_op(op), i,
                                     as_comm(comm_), as_stream(stream_)));
    }
    PARTRAIN_NCCL_CHECK(ncclGroupEnd());
  }
  return enqueued();
}

Request NcclCommunicator::allgather(const void* send, void* recv, std::int64_t count, DataType dt, Algo algo) {
  resolve(Op::Allgather, algo, 0);
  auto& ctr = counters_[Op::Allgather];
  ++ctr.calls;
  count_vendor(ctr, Op::Allgather, count * std::int64_t(size_of(dt)), size_);
  ctr.bus_bytes += bus_bytes(Op::Allgather, count * std::int64_t(size_of(dt)), size_);
  if (count % size_ == 0) {
    PARTRAIN_NCCL_CHECK(ncclAllGather(send, recv, std::size_t(count / size_), nccl_type(dt), as_comm(comm_),
                                      as_stream(stream_)));
  } else {  // uneven blocks: one ncclBroadcast per block from its owner
    PARTRAIN_NCCL_CHECK(ncclGroupStart());
    for (int i = 0; i < size_; ++i) {
      void* dst = const_cast<char*>(ptr(recv, block_offset(count, size_, i), dt));
      PARTRAIN_NCCL_CHECK(ncclBroadcast(i == rank_ ? send : dst, dst, std::size_t(block_count(count, size_, i)),
                                        nccl_type(dt), i, as_comm(comm_), as_stream(stream_)));
    }
    PARTRAIN_NCCL_CHECK(ncclGroupEnd());
  }
  return enqueued();
}

Request NcclCommunicator::broadcast(void* buf, std::int64_t count, DataType dt, int root, Algo algo) {
  if (root < 0 || root >= size_) input_error("root", std::to_string(root), "not a rank of the communicator");
  resolve(Op::Broadcast, algo, 0);
  auto& ctr = counters_[Op::Broadcast];
  ++ctr.calls;
  count_vendor(ctr, Op::Broadcast, count * std::int64_t(size_of(dt)), size_);
  ctr.bus_bytes += bus_bytes(Op::Broadcast, count * std::int64_t(size_of(dt)), size_);
  PARTRAIN_NCCL_CHECK(ncclBroadcast(buf, buf, std::size_t(count), nccl_type(dt), root, as_comm(comm_),
                                    as_stream(stream_)));
  return enqueued();
}

Request NcclCommunicator::alltoall(const void* send, void* recv, std::int64_t count, DataType dt, Algo algo) {
  resolve(Op::Alltoall, algo, 0);
  auto& ctr = counters_[Op::Alltoall];
  ++ctr.calls;
  const std::int64_t bytes = count * size_ * std::int64_t(size_of(dt));
  count_vendor(ctr, Op::Alltoall, bytes, size_);
  ctr.bus_bytes += bus_bytes(Op::Alltoall, bytes, size_);
  const void* src = send;
  if (send == recv && bytes > 0) {  // in place: stage the input on the device
    void* s = scratch(bytes);
    PARTRAIN_CUDA_CHECK(cudaMemcpyAsync(s, send, std::size_t(bytes), cudaMemcpyDeviceToDevice, as_stream(stream_)));
    src = s;
  }
  PARTRAIN_NCCL_CHECK(ncclGroupStart());
  for (int p = 0; p < size_; ++p) {
    PARTRAIN_NCCL_CHECK(ncclSend(ptr(src, std::int64_t(p) * count, dt), std::size_t(count), nccl_type(dt), p,
                                 as_comm(comm_), as_stream(stream_)));
    PARTRAIN_NCCL_CHECK(ncclRecv(const_cast<char*>(ptr(recv, std::int64_t(p) * count, dt)), std::size_t(count),
                                 nccl_type(dt), p, as_comm(comm_), as_stream(stream_)));
  }
  PARTRAIN_NCCL_CHECK(ncclGroupEnd());
  return enqueued();
}

Request NcclCommunicator::alltoallv(const void* send, const std::int64_t* send_counts, void* recv,
                                    const std::int64_t* recv_counts, DataType dt, Algo algo) {
  resolve(Op::Alltoall, algo, 0);
  auto& ctr = counters_[Op::Alltoall];
  ++ctr.calls;
  const std::int64_t es = std::int64_t(size_of(dt));
  std::int64_t so = 0, ro = 0;
  PARTRAIN_NCCL_CHECK(ncclGroupStart());
  for (int p = 0; p < size_; ++p) {
    if (p != rank_) {
      ctr.bytes_sent += send_counts[p] * es;
      ctr.bytes_received += recv_counts[p] * es;
      ctr.bus_bytes += send_counts[p] * es;
    }
    if (send_counts[p] > 0)
      PARTRAIN_NCCL_CHECK(ncclSend(ptr(send, so, dt), std::size_t(send_counts[p]), nccl_type(dt), p, as_comm(comm_),
                                   as_stream(stream_)));
    if (recv_counts[p] > 0)
      PARTRAIN_NCCL_CHECK(ncclRecv(const_cast<char*>(ptr(recv, ro, dt)), std::size_t(recv_counts[p]), nccl_type(dt), p,
                                   as_comm(comm_), as_stream(stream_)));
    so += send_counts[p];
    ro += recv_counts[p];
  }
  PARTRAIN_NCCL_CHECK(ncclGroupEnd());
  return enqueued();
}

Request NcclCommunicator::barrier(Algo algo) {
  resolve(Op::Barrier, algo, 0);
  ++counters_[Op::Barrier].calls;
  float* one = static_cast<float*>(scratch(sizeof(float)));
  PARTRAIN_NCCL_CHECK(ncclAllReduce(one, one, 1, ncclFloat32, ncclSum, as_comm(comm_), as_stream(stream_)));
  return enqueued();
}

Request NcclCommunicator::send(const void* buf, std::int64_t count, DataType dt, int peer, int) {
  auto& ctr = counters_[Op::SendRecv];
  ++ctr.calls;
  ctr.bytes_sent += count * std::int64_t(size_of(dt));
  PARTRAIN_NCCL_CHECK(ncclSend(buf, std::size_t(count), nccl_type(dt), peer, as_comm(comm_), as_stream(stream_)));
  return enqueued();
}

Request NcclCommunicator::recv(void* buf, std::int64_t count, DataType dt, int peer, int) {
  auto& ctr = counters_[Op::SendRecv];
  ++ctr.calls;
  ctr.bytes_received += count * std::int64_t(size_of(dt));
  PARTRAIN_NCCL_CHECK(ncclRecv(buf, std::size_t(count), nccl_type(dt), peer, as_comm(comm_), as_stream(stream_)));
  return enqueued();
}

}  // namespace partrain::coll
