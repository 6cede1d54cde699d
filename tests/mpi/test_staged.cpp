// The host-staged path (StagedCommunicator) over the MPI communicator, with memcpy standing in for the device
// copies: every operation × algorithm × count × in place / out of place gives exactly the direct communicator's
// result; the copies are the bytes the user pays, made back only once an operation has completed; the staging pool
// stops allocating once warm.
#include <gtest/gtest.h>

#include "coll_test_util.hpp"
#include "partrain/collectives/staged_communicator.hpp"

using namespace partrain;
using namespace partrain::coll;
using namespace partrain::test;

namespace {
/// memcpy, counting what it copies each way.
class CountingCopier : public DeviceCopier {
 public:
  std::int64_t to_host_bytes = 0, to_device_bytes = 0, to_device_calls = 0;
  void to_host(void* h, const void* d, std::int64_t bytes) override {
    to_host_bytes += bytes;
    inner_->to_host(h, d, bytes);
  }
  void to_device(void* d, const void* h, std::int64_t bytes) override {
    to_device_bytes += bytes;
    ++to_device_calls;
    inner_->to_device(d, h, bytes);
  }
  const char* name() const override { return "counting memcpy"; }

 private:
  std::unique_ptr<DeviceCopier> inner_ = host_copier();
};

const std::int64_t kCounts[] = {0, 1, 7, 4099, 65537};

struct Fixture {
  MpiCommunicator direct{MPI_COMM_WORLD};
  CountingCopier* copier = new CountingCopier;
  StagedCommunicator staged{direct, std::unique_ptr<DeviceCopier>(copier)};
  int n = direct.size(), r = direct.rank();
};

/// Launches on the staged communicator; until the request completes, nothing has been copied back.
template <class Launch>
void run_staged(Fixture& f, Launch launch) {
  const std::int64_t before = f.copier->to_device_calls;
  Request q = launch();
  if (!q.done()) EXPECT_EQ(f.copier->to_device_calls, before) << "copied back before completion";
  q.wait();
}
}  // namespace

TEST(Staged, AllreduceEqualsDirect) {
  Fixture f;
  for (Algo a : runnable_algorithms(f.direct, Op::Allreduce))
    for (std::int64_t count : kCounts)
      for (bool in_place : {false, true}) {
        SCOPED_TRACE(std::string(name(a)) + " count " + std::to_string(count) + (in_place ? " in place" : ""));
        auto x = inputs<float>(f.r, count), want = std::vector<float>(std::size_t(count), -1.f);
        f.direct.allreduce(x.data(), want.data(), count, ReduceOp::Sum, a).wait();
        auto s = inputs<float>(f.r, count), got = std::vector<float>(std::size_t(count), -1.f);
        const std::int64_t h0 = f.copier->to_host_bytes, d0 = f.copier->to_device_bytes;
        run_staged(f, [&] { return f.staged.allreduce(s.data(), in_place ? s.data() : got.data(), count, ReduceOp::Sum, a); });
        EXPECT_EQ(in_place ? s : got, want);
        EXPECT_EQ(f.copier->to_host_bytes - h0, count * 4);
        EXPECT_EQ(f.copier->to_device_bytes - d0, count * 4);
      }
}

TEST(Staged, ReduceScatterAllgatherBroadcastAlltoallEqualDirect) {
  Fixture f;
  const int n = f.n, r = f.r;
  for (std::int64_t count : kCounts) {
    const std::int64_t off = block_offset(count, n, r), nb = block_count(count, n, r);
    for (Algo a : runnable_algorithms(f.direct, Op::ReduceScatter))
      for (bool in_place : {false, true}) {
        SCOPED_TRACE(std::string("reduce_scatter ") + name(a) + " count " + std::to_string(count) + (in_place ? " in place" : ""));
        auto x = inputs<double>(r, count);
        std::vector<double> want(std::size_t(nb), -1);
        f.direct.reduce_scatter(x.data(), want.data(), count, ReduceOp::Sum, a).wait();
        auto s = inputs<double>(r, count);
        std::vector<double> got(std::size_t(nb), -1);
        run_staged(f, [&] { return f.staged.reduce_scatter(s.data(), in_place ? s.data() : got.data(), count, ReduceOp::Sum, a); });
        const double* out = in_place ? s.data() + off : got.data();
        EXPECT_EQ(std::vector<double>(out, out + nb), want);
      }
    for (Algo a : runnable_algorithms(f.direct, Op::Allgather))
      for (bool in_place : {false, true}) {
        SCOPED_TRACE(std::string("allgather ") + name(a) + " count " + std::to_string(count) + (in_place ? " in place" : ""));
        auto mine = inputs<float>(r, nb, off);
        std::vector<float> want(std::size_t(count), -1.f), got(std::size_t(count), -1.f);
        f.direct.allgather(mine.data(), want.data(), count, a).wait();
        if (in_place) std::copy(mine.begin(), mine.end(), got.begin() + off);
        run_staged(f, [&] { return f.staged.allgather(in_place ? got.data() + off : mine.data(), got.data(), count, a); });
        EXPECT_EQ(got, want);
      }
    for (Algo a : runnable_algorithms(f.direct, Op::Broadcast)) {
      SCOPED_TRACE(std::string("broadcast ") + name(a) + " count " + std::to_string(count));
      auto got = r == n - 1 ? inputs<double>(n - 1, count) : std::vector<double>(std::size_t(count), -1);
      run_staged(f, [&] { return f.staged.broadcast(got.data(), count, n - 1, a); });
      EXPECT_EQ(got, inputs<double>(n - 1, count));
    }
    if (count > 5000) continue;  // alltoall: count elements per peer
    for (Algo a : runnable_algorithms(f.direct, Op::Alltoall)) {
      SCOPED_TRACE(std::string("alltoall ") + name(a) + " count " + std::to_string(count));
      auto x = inputs<float>(r, count * n);
      std::vector<float> want(std::size_t(count * n), -1.f), got(std::size_t(count * n), -1.f);
      f.direct.alltoall(x.data(), want.data(), count, a).wait();
      run_staged(f, [&] { return f.staged.alltoall(x.data(), got.data(), count, a); });
      EXPECT_EQ(got, want);
    }
    for (Algo a : runnable_algorithms(f.direct, Op::Alltoall)) {  // uneven: count·(1 + (r + j) mod 3) to rank j
      SCOPED_TRACE(std::string("alltoallv ") + name(a) + " count " + std::to_string(count));
      std::vector<std::int64_t> sc(static_cast<std::size_t>(n)), rc(static_cast<std::size_t>(n));
      std::int64_t st = 0, rt = 0;
      for (int j = 0; j < n; ++j) {
        sc[std::size_t(j)] = count * (1 + (r + j) % 3);
        rc[std::size_t(j)] = count * (1 + (j + r) % 3);
        st += sc[std::size_t(j)];
        rt += rc[std::size_t(j)];
      }
      auto x = inputs<float>(r, st);
      std::vector<float> want(std::size_t(rt), -1.f), got(std::size_t(rt), -1.f);
      f.direct.alltoallv(x.data(), sc.data(), want.data(), rc.data(), a).wait();
      run_staged(f, [&] { return f.staged.alltoallv(x.data(), sc.data(), got.data(), rc.data(), a); });
      EXPECT_EQ(got, want);
    }
  }
}

TEST(Staged, SendRecvAndThePoolStopsGrowing) {
  Fixture f;
  const int n = f.n, r = f.r;
  for (int round = 0; round < 3; ++round) {  // one operation at a time: one buffer, the largest asked for, reused
    std::vector<float> g(4099, 1.f), h(100, 2.f);
    f.staged.allreduce(g.data(), g.data(), 4099, ReduceOp::Sum).wait();
    f.staged.allreduce(h.data(), h.data(), 100, ReduceOp::Sum).wait();
    EXPECT_EQ(g, std::vector<float>(4099, float(n)));
    EXPECT_EQ(h, std::vector<float>(100, float(2 * n)));
  }
  EXPECT_EQ(f.staged.staging_allocations(), 1) << "the pool reuses its buffer once warm";
  std::vector<double> out(1000, double(r)), in(1000, -1);
  auto rq = f.staged.recv(in.data(), 1000, DataType::Double, (r - 1 + n) % n, 11);
  auto sq = f.staged.send(out.data(), 1000, DataType::Double, (r + 1) % n, 11);
  sq.wait();
  rq.wait();
  EXPECT_EQ(in, std::vector<double>(1000, double((r - 1 + n) % n)));
  // at most one more buffer: the pool's holds either, and a second one when both are in flight at once
  EXPECT_LE(f.staged.staging_allocations(), 2);
  EXPECT_EQ(f.staged.staged_bytes(), 3 * 2 * (4099 + 100) * 4 + 8000 + 8000);
  EXPECT_EQ(f.staged.counters()[Op::Allreduce].calls, f.direct.counters()[Op::Allreduce].calls);
}
