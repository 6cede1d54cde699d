// The shm algorithm beyond the exhaustive operation tests: the zero-copy allreduce on shared-window buffers (one
// call and several in flight on disjoint ranges, as data-parallel buckets are), the epoch counter wrapping
// around, and two communicators used at once — among the ranks of each node (all ranks on one machine).
#include <gtest/gtest.h>

#include <sched.h>

#include <cstdint>

#include "coll_test_util.hpp"

using namespace partrain;
using namespace partrain::coll;
using namespace partrain::test;

TEST(Shm, ZeroCopyAllreduceExact) {
  MpiCommunicator c(node_world());
  const int n = c.size(), r = c.rank();
  const std::int64_t cap = 262144 + 64;
  auto* buf = static_cast<double*>(c.shared_buffer(cap * 8));
  for (std::int64_t count : {0, 1, 7, 4099, 262144})
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max})
      for (std::int64_t off : {0, 3}) {
        SCOPED_TRACE("count " + std::to_string(count) + " offset " + std::to_string(off) + " " + name(op));
        auto in = inputs<double>(r, count);
        std::copy(in.begin(), in.end(), buf + off);
        c.allreduce(buf + off, buf + off, count, op, Algo::Shm).wait();
        std::int64_t bad = 0;
        for (std::int64_t i = 0; i < count; ++i)
          bad += buf[off + i] != (op == ReduceOp::Sum ? sum_value(n, i) : max_value(n, i));
        EXPECT_EQ(bad, 0);
      }
}

TEST(Shm, ZeroCopyBucketsInFlightTogether) {
  MpiCommunicator c(node_world());
  const int n = c.size(), r = c.rank();
  const std::int64_t count = 100000, buckets = 7, per = count / buckets + 1;
  auto* buf = static_cast<float*>(c.shared_buffer(count * 4));
  for (int rep = 0; rep < 20; ++rep) {
    auto in = inputs<float>(r + rep, count);
    std::copy(in.begin(), in.end(), buf);
    std::vector<Request> reqs;
    for (std::int64_t b = buckets; b-- > 0;) {  // launched last bucket first, progressed in any order
      const std::int64_t lo = b * per, m = std::min(count, lo + per) - lo;
      reqs.push_back(c.allreduce(buf + lo, buf + lo, m, ReduceOp::Sum, Algo::Auto));
    }
    for (std::size_t k = reqs.size(); k-- > 0;) reqs[k].test();
    wait_all(reqs);
    double expect_scale = 0;
    for (int q = 0; q < n; ++q) expect_scale += q + rep + 1;
    for (std::int64_t i = 0; i < count; ++i) ASSERT_EQ(buf[i], float(expect_scale * double(i % 97 + 1))) << i;
  }
}

TEST(Shm, EpochCounterWrapsAround) {
  MpiCommunicator c(node_world());
  c.set_chunk_bytes(256);  // many chunks (epochs) per call
  c.set_shm_first_epoch(UINT64_MAX - 100);
  const int n = c.size(), r = c.rank();
  for (int it = 0; it < 50; ++it) {  // 50 calls × 16 chunks: crosses 2^64 early on
    auto x = inputs<float>(r, 1000);
    c.allreduce(x.data(), x.data(), 1000, ReduceOp::Sum, Algo::Shm).wait();
    for (std::int64_t i = 0; i < 1000; ++i) ASSERT_EQ(x[i], float(sum_value(n, i))) << "call " << it;
    std::vector<double> g(static_cast<std::size_t>(1000));
    auto mine = inputs<double>(r, block_count(1000, n, r), block_offset(1000, n, r));
    c.allgather(mine.data(), g.data(), 1000, Algo::Shm).wait();
  }
}

TEST(Shm, TwoCommunicatorsAtOnce) {
  MpiCommunicator a(node_world()), b(node_world());
  const int n = a.size(), r = a.rank();
  for (int it = 0; it < 10; ++it) {
    auto x = inputs<float>(r, 50000), y = inputs<float>(r, 30000);
    auto qa = a.allreduce(x.data(), x.data(), 50000, ReduceOp::Sum, Algo::Shm);
    auto qb = b.allreduce(y.data(), y.data(), 30000, ReduceOp::Max, Algo::Shm);
    while (!(qb.test() & qa.test())) sched_yield();  // both progressed every round; 4 ranks share 2 cores
    for (std::int64_t i = 0; i < 50000; ++i) ASSERT_EQ(x[i], float(sum_value(n, i)));
    for (std::int64_t i = 0; i < 30000; ++i) ASSERT_EQ(y[i], float(max_value(n, i)));
  }
}

// Outputs larger than the last-level cache (2 · ranks · bytes > LLC, 32 MiB on the build machine) are written
// with non-temporal stores: a destination that is not 32-byte aligned (the head element by element), an odd
// tail, in and out of place, for each operation.
TEST(Shm, LargeMessagesWithStreamingStores) {
  MpiCommunicator c(node_world());
  const int n = c.size(), r = c.rank();
  const std::int64_t count = (std::int64_t(64) << 20) / 4 + 5;  // 64 MiB + 20 B: past any 2-rank LLC up to 256 MiB
  auto x = inputs<float>(r, count);
  std::vector<float> y(static_cast<std::size_t>(count + 1));
  c.allreduce(x.data(), y.data() + 1, count, ReduceOp::Sum, Algo::Shm).wait();  // recv 4 bytes past alignment
  std::int64_t bad = 0;
  for (std::int64_t i = 0; i < count; ++i) bad += y[std::size_t(i) + 1] != float(sum_value(n, i));
  EXPECT_EQ(bad, 0) << "allreduce out of place";
  c.allreduce(x.data(), x.data(), count, ReduceOp::Max, Algo::Shm).wait();
  bad = 0;
  for (std::int64_t i = 0; i < count; ++i) bad += x[std::size_t(i)] != float(max_value(n, i));
  EXPECT_EQ(bad, 0) << "allreduce in place";
  x = inputs<float>(r, count);
  c.reduce_scatter(x.data(), y.data(), count, ReduceOp::Sum, Algo::Shm).wait();
  bad = 0;
  const std::int64_t first = block_offset(count, n, r);
  for (std::int64_t i = 0; i < block_count(count, n, r); ++i)
    bad += y[std::size_t(i)] != float(sum_value(n, first + i));
  EXPECT_EQ(bad, 0) << "reduce_scatter";
  auto mine = inputs<float>(r, block_count(count, n, r), first);
  c.allgather(mine.data(), y.data() + 1, count, Algo::Shm).wait();
  bad = 0;
  for (int q = 0; q < n; ++q) {
    const auto theirs = inputs<float>(q, block_count(count, n, q), block_offset(count, n, q));
    for (std::size_t i = 0; i < theirs.size(); ++i)
      bad += y[std::size_t(block_offset(count, n, q)) + i + 1] != theirs[i];
  }
  EXPECT_EQ(bad, 0) << "allgather";
}
