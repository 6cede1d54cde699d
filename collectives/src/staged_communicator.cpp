#include "partrain/collectives/staged_communicator.hpp"

#include <algorithm>
#include <cstring>
#include <functional>

namespace partrain::coll {

namespace {
class MemcpyCopier : public DeviceCopier {
 public:
  void to_host(void* host, const void* device, std::int64_t bytes) override {
    if (bytes > 0) std::memcpy(host, device, std::size_t(bytes));
  }
  void to_device(void* device, const void* host, std::int64_t bytes) override {
    if (bytes > 0) std::memcpy(device, host, std::size_t(bytes));
  }
  const char* name() const override { return "memcpy"; }
};

/// The inner request, then the copy back once (a request is tested until complete, and completes once).
class StagedRequest : public RequestState {
 public:
  StagedRequest(Request inner, std::function<void()> finish) : inner_(std::move(inner)), finish_(std::move(finish)) {}
  bool test() override {
    if (!inner_.test()) return false;
    if (finish_) {
      finish_();
      finish_ = nullptr;
    }
    return true;
  }

 private:
  Request inner_;
  std::function<void()> finish_;
};
}  // namespace

std::unique_ptr<DeviceCopier> host_copier() { return std::make_unique<MemcpyCopier>(); }

void* DeviceCopier::allocate_host(std::int64_t bytes) { return ::operator new(std::size_t(bytes)); }
void DeviceCopier::free_host(void* p) { ::operator delete(p); }

#ifndef PARTRAIN_CUDA_COPIER
std::unique_ptr<DeviceCopier> cuda_copier() { return nullptr; }
#endif

struct StagedCommunicator::Buffer {
  Buffer(DeviceCopier& c, std::int64_t n) : copier(c), size(n), data(static_cast<char*>(c.allocate_host(n))) {}
  ~Buffer() { copier.free_host(data); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  DeviceCopier& copier;
  std::int64_t size;
  char* data;
  bool busy = false;
};

StagedCommunicator::StagedCommunicator(Communicator& inner, std::unique_ptr<DeviceCopier> copier)
    : inner_(inner), copier_(std::move(copier)) {}
StagedCommunicator::~StagedCommunicator() = default;

StagedCommunicator::Buffer* StagedCommunicator::acquire(std::int64_t bytes) {
  Buffer* best = nullptr;
  for (auto& b : pool_)  // the smallest free buffer that holds it
    if (!b->busy && b->size >= bytes && (!best || b->size < best->size)) best = b.get();
  if (!best) {
    pool_.push_back(std::make_unique<Buffer>(*copier_, std::max<std::int64_t>(bytes, 1)));
    best = pool_.back().get();
    ++allocations_;
  }
  best->busy = true;
  return best;
}

Request StagedCommunicator::staged(Request inner, Buffer* buf, std::function<void(char*)> finish, const char* what) {
  sync_counters();
  Request r(std::make_unique<StagedRequest>(std::move(inner), [buf, finish = std::move(finish)] {
    finish(buf->data);
    buf->busy = false;
  }));
  r.test();
  return std::move(r.describe(what, -1));
}

Request StagedCommunicator::allreduce(const void* send, void* recv, std::int64_t count, DataType dt, ReduceOp op,
                                      Algo algo) {
  const std::int64_t bytes = count * std::int64_t(size_of(dt));
  Buffer* b = acquire(bytes);
  copier_->to_host(b->data, send, bytes);
  staged_bytes_ += 2 * bytes;
  auto in = inner_.allreduce(b->data, b->data, count, dt, op, algo);
  return staged(std::move(in), b, [this, recv, bytes](char* h) { copier_->to_device(recv, h, bytes); }, "allreduce");
}

Request StagedCommunicator::reduce_scatter(const void* send, void* recv, std::int64_t count, DataType dt,
                                           ReduceOp op, Algo algo) {
  const std::int64_t es = std::int64_t(size_of(dt)), bytes = count * es;
  const std::int64_t off = block_offset(count, size(), rank()) * es, mine = block_count(count, size(), rank()) * es;
  Buffer* b = acquire(bytes);
  copier_->to_host(b->data, send, bytes);
  staged_bytes_ += bytes + mine;
  auto in = inner_.reduce_scatter(b->data, b->data, count, dt, op, algo);  // result at + off
  char* out = static_cast<char*>(recv) + (send == recv ? off : 0);
  return staged(std::move(in), b, [this, out, off, mine](char* h) { copier_->to_device(out, h + off, mine); },
                "reduce_scatter");
}

Request StagedCommunicator::allgather(const void* send, void* recv, std::int64_t count, DataType dt, Algo algo) {
  const std::int64_t es = std::int64_t(size_of(dt)), bytes = count * es;
  const std::int64_t off = block_offset(count, size(), rank()) * es, mine = block_count(count, size(), rank()) * es;
  Buffer* b = acquire(bytes);
  copier_->to_host(b->data + off, send, mine);
  staged_bytes_ += mine + bytes;
  auto in = inner_.allgather(b->data + off, b->data, count, dt, algo);  // in place on the host
  return staged(std::move(in), b, [this, recv, bytes](char* h) { copier_->to_device(recv, h, bytes); }, "allgather");
}

Request StagedCommunicator::broadcast(void* buf, std::int64_t count, DataType dt, int root, Algo algo) {
  const std::int64_t bytes = count * std::int64_t(size_of(dt));
  Buffer* b = acquire(bytes);
  const bool is_root = rank() == root;
  if (is_root) copier_->to_host(b->data, buf, bytes);
  staged_bytes_ += bytes;  // the root copies out, every other rank copies in
  auto in = inner_.broadcast(b->data, count, dt, root, algo);
  return staged(std::move(in), b, [this, buf, bytes, is_root](char* h) {
    if (!is_root) copier_->to_device(buf, h, bytes);
  }, "broadcast");
}

Request StagedCommunicator::alltoall(const void* send, void* recv, std::int64_t count, DataType dt, Algo algo) {
  const std::int64_t bytes = count * size() * std::int64_t(size_of(dt));
  Buffer* b = acquire(bytes);
  copier_->to_host(b->data, send, bytes);
  staged_bytes_ += 2 * bytes;
  auto in = inner_.alltoall(b->data, b->data, count, dt, algo);
  return staged(std::move(in), b, [this, recv, bytes](char* h) { copier_->to_device(recv, h, bytes); }, "alltoall");
}

Request StagedCommunicator::alltoallv(const void* send, const std::int64_t* send_counts, void* recv,
                                      const std::int64_t* recv_counts, DataType dt, Algo algo) {
  const std::int64_t es = std::int64_t(size_of(dt));
  std::int64_t sbytes = 0, rbytes = 0;
  for (int j = 0; j < size(); ++j) {
    sbytes += send_counts[j] * es;
    rbytes += recv_counts[j] * es;
  }
  Buffer* b = acquire(sbytes + rbytes);  // the input, then the output
  copier_->to_host(b->data, send, sbytes);
  staged_bytes_ += sbytes + rbytes;
  auto in = inner_.alltoallv(b->data, send_counts, b->data + sbytes, recv_counts, dt, algo);
  return staged(std::move(in), b, [this, recv, sbytes, rbytes](char* h) { copier_->to_device(recv, h + sbytes, rbytes); },
                "alltoallv");
}

Request StagedCommunicator::send(const void* buf, std::int64_t count, DataType dt, int peer, int tag) {
  const std::int64_t bytes = count * std::int64_t(size_of(dt));
  Buffer* b = acquire(bytes);
  copier_->to_host(b->data, buf, bytes);
  staged_bytes_ += bytes;
  auto in = inner_.send(b->data, count, dt, peer, tag);
  auto r = staged(std::move(in), b, [](char*) {}, "send");
  return std::move(r.describe("send", peer));
}

Request StagedCommunicator::recv(void* buf, std::int64_t count, DataType dt, int peer, int tag) {
  const std::int64_t bytes = count * std::int64_t(size_of(dt));
  Buffer* b = acquire(bytes);
  staged_bytes_ += bytes;
  auto in = inner_.recv(b->data, count, dt, peer, tag);
  auto r = staged(std::move(in), b, [this, buf, bytes](char* h) { copier_->to_device(buf, h, bytes); }, "recv");
  return std::move(r.describe("recv", peer));
}

}  // namespace partrain::coll
