// The NCCL communicator on device buffers: every operation, even and uneven counts, in place and out of place,
// verified exactly. Skips cleanly where no GPU is visible (CI) or where ranks on a node outnumber its GPUs.
#include <cuda_runtime.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <vector>

#include "partrain/collectives/nccl_communicator.hpp"
#include "partrain/collectives/wait.hpp"
#include "partrain/core/error.hpp"

using namespace partrain;
using namespace partrain::coll;

namespace {
double value(int rank, std::int64_t i) { return double(rank + 1) * double(i % 97 + 1); }

struct DeviceBuffer {
  float* p = nullptr;
  std::int64_t n = 0;
  explicit DeviceBuffer(std::int64_t count) : n(count) { cudaMalloc(&p, std::size_t(std::max<std::int64_t>(count, 1)) * 4); }
  ~DeviceBuffer() { cudaFree(p); }
  void set(const std::vector<float>& v) { cudaMemcpy(p, v.data(), v.size() * 4, cudaMemcpyHostToDevice); }
  std::vector<float> get(std::int64_t count, std::int64_t off = 0) const {
    std::vector<float> v(static_cast<std::size_t>(count));
    cudaMemcpy(v.data(), p + off, std::size_t(count) * 4, cudaMemcpyDeviceToHost);
    return v;
  }
};

std::vector<float> inputs(int rank, std::int64_t count, std::int64_t first = 0) {
  std::vector<float> v(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) v[std::size_t(i)] = float(value(rank, first + i));
  return v;
}

bool usable() {
  if (!NcclCommunicator::available()) return false;
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int local = 0, devices = 0, ok = 0;
  MPI_Comm_size(node, &local);
  MPI_Comm_free(&node);
  cudaGetDeviceCount(&devices);
  const int mine = local <= devices ? 1 : 0;
  coll::allreduce(&mine, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return ok == 1;
}
}  // namespace

TEST(Nccl, EveryOperationExact) {
  if (!usable()) GTEST_SKIP() << "no GPU for every rank on this node";
  auto c = NcclCommunicator::create(MPI_COMM_WORLD);
  const int n = c->size(), r = c->rank();
  for (std::int64_t count : {std::int64_t(0), std::int64_t(1), std::int64_t(7), std::int64_t(4096), std::int64_t(262147)}) {
    SCOPED_TRACE("count " + std::to_string(count));
    DeviceBuffer a(count), b(count);
    // allreduce, out of place and in place
    a.set(inputs(r, count));
    c->allreduce(a.p, b.p, count, ReduceOp::Sum).wait();
    auto got = b.get(count);
    for (std::int64_t i = 0; i < count; ++i) ASSERT_EQ(got[i], float(n * (n + 1) / 2 * (i % 97 + 1)));
    c->allreduce(a.p, a.p, count, ReduceOp::Max).wait();
    got = a.get(count);
    for (std::int64_t i = 0; i < count; ++i) ASSERT_EQ(got[i], float(n * (i % 97 + 1)));
    // reduce_scatter (uneven when n does not divide count)
    a.set(inputs(r, count));
    const std::int64_t off = block_offset(count, n, r), nb = block_count(count, n, r);
    c->reduce_scatter(a.p, b.p, count, ReduceOp::Sum).wait();
    got = b.get(nb);
    for (std::int64_t i = 0; i < nb; ++i) ASSERT_EQ(got[i], float(n * (n + 1) / 2 * ((off + i) % 97 + 1)));
    // allgather in place
    a.set(std::vector<float>(static_cast<std::size_t>(count), -1.0f));
    cudaMemcpy(a.p + off, inputs(r, nb, off).data(), std::size_t(nb) * 4, cudaMemcpyHostToDevice);
    c->allgather(a.p + off, a.p, count).wait();
    got = a.get(count);
    for (int o = 0; o < n; ++o)
      for (std::int64_t i = block_offset(count, n, o); i < block_offset(count, n, o) + block_count(count, n, o); ++i)
        ASSERT_EQ(got[i], float(value(o, i)));
    // broadcast from the last rank
    a.set(r == n - 1 ? inputs(r, count) : std::vector<float>(static_cast<std::size_t>(count), -1.0f));
    c->broadcast(a.p, count, n - 1).wait();
    got = a.get(count);
    for (std::int64_t i = 0; i < count; ++i) ASSERT_EQ(got[i], float(value(n - 1, i)));
  }
  // alltoall, in place; barrier; the counters
  const std::int64_t per = 1000;
  DeviceBuffer x(per * n);
  x.set(inputs(r, per * n));
  c->alltoall(x.p, x.p, per).wait();
  auto got = x.get(per * n);
  for (std::int64_t k = 0; k < per * n; ++k) ASSERT_EQ(got[k], float(value(int(k / per), r * per + k % per)));
  c->barrier().wait();
  EXPECT_GT(c->counters()[Op::Allreduce].calls, 0);
  EXPECT_THROW(c->allreduce(x.p, x.p, 1, ReduceOp::Sum, Algo::Ring), InputError);
}

TEST(Nccl, RequestsCompleteThroughTest) {
  if (!usable()) GTEST_SKIP() << "no GPU for every rank on this node";
  auto c = NcclCommunicator::create(MPI_COMM_WORLD);
  const std::int64_t count = 1 << 24;
  DeviceBuffer a(count);
  a.set(inputs(c->rank(), count));
  std::vector<Request> reqs;
  for (int i = 0; i < 4; ++i) reqs.push_back(c->allreduce(a.p, a.p, count, ReduceOp::Max));
  int polls = 0;
  for (bool all = false; !all; ++polls) {
    all = true;
    for (auto& q : reqs) all = q.test() && all;
  }
  EXPECT_GE(polls, 1);
  auto got = a.get(10);
  for (std::int64_t i = 0; i < 10; ++i) EXPECT_EQ(got[i], float(c->size() * (i % 97 + 1)));
}
