// Byte counters against each algorithm's closed form, per rank (blocks: b_i = block_count(N, n, i)):
//   ring allreduce       sends (N − b_r) + (N − b_{r+1}) elements   [= 2(n−1)/n·N when n divides N],
//                        receives (N − b_{r−1}) + (N − b_r)
//   ring reduce_scatter  sends N − b_r;   ring allgather: N − b_{r+1}
//   recdbl allreduce (n a power of two, small)   sends log₂n · N
//   Rabenseifner (n a power of two, n | N)       sends 2(n−1)/n · N
//   vendor               counts the bus bytes, 2(n−1)/n · N for allreduce
#include <gtest/gtest.h>

#include "coll_test_util.hpp"

using namespace partrain;
using namespace partrain::coll;
using namespace partrain::test;

namespace {
std::int64_t sent_by(MpiCommunicator& c, Op op, const std::function<void()>& f) {
  const auto before = c.counters()[op].bytes_sent;
  f();
  return c.counters()[op].bytes_sent - before;
}
}  // namespace

TEST(Counters, RingClosedForms) {
  MpiCommunicator c(MPI_COMM_WORLD);
  const int n = c.size(), r = c.rank();
  for (std::int64_t N : {7, 4099, 262144}) {
    std::vector<float> x = inputs<float>(r, N), y(static_cast<std::size_t>(N));
    const std::int64_t br = block_count(N, n, r), bnext = block_count(N, n, (r + 1) % n);
    const std::int64_t f = 4;  // bytes per float
    EXPECT_EQ(sent_by(c, Op::Allreduce, [&] { c.allreduce(x.data(), y.data(), N, ReduceOp::Sum, Algo::Ring).wait(); }),
              n == 1 ? 0 : f * ((N - br) + (N - bnext)));
    EXPECT_EQ(sent_by(c, Op::ReduceScatter,
                      [&] { c.reduce_scatter(x.data(), y.data(), N, ReduceOp::Sum, Algo::Ring).wait(); }),
              n == 1 ? 0 : f * (N - br));
    std::vector<float> mine(static_cast<std::size_t>(br));
    EXPECT_EQ(sent_by(c, Op::Allgather, [&] { c.allgather(mine.data(), y.data(), N, Algo::Ring).wait(); }),
              n == 1 ? 0 : f * (N - bnext));
    if (N % n == 0 && n > 1)
      EXPECT_EQ(sent_by(c, Op::Allreduce, [&] { c.allreduce(x.data(), y.data(), N, ReduceOp::Sum, Algo::Ring).wait(); }),
                std::int64_t(2.0 * (n - 1) / n * double(N * f) + 0.5));
  }
  // received: reduce-scatter gets every block but b_{r−1}, allgather every block but b_r
  const std::int64_t N = 4099, recv_before = c.counters()[Op::Allreduce].bytes_received;
  std::vector<float> x = inputs<float>(r, N);
  c.allreduce(x.data(), x.data(), N, ReduceOp::Sum, Algo::Ring).wait();
  EXPECT_EQ(c.counters()[Op::Allreduce].bytes_received - recv_before,
            n == 1 ? 0 : 4 * (2 * N - block_count(N, n, (r - 1 + n) % n) - block_count(N, n, r)));
}

TEST(Counters, RecursiveDoublingAndRabenseifnerForPowersOfTwo) {
  MpiCommunicator c(MPI_COMM_WORLD);
  const int n = c.size();
  if (n & (n - 1)) GTEST_SKIP() << "closed forms for powers of two";
  int lg = 0;
  while ((1 << lg) < n) ++lg;
  std::vector<double> x(64, 1.0);  // 512 bytes: plain recursive doubling
  EXPECT_EQ(sent_by(c, Op::Allreduce, [&] { c.allreduce(x.data(), x.data(), 64, ReduceOp::Sum, Algo::RecDbl).wait(); }),
            std::int64_t(lg) * 512);
  const std::int64_t N = 1 << 16;  // 512 KiB: Rabenseifner
  std::vector<double> z(static_cast<std::size_t>(N), 1.0);
  EXPECT_EQ(sent_by(c, Op::Allreduce, [&] { c.allreduce(z.data(), z.data(), N, ReduceOp::Sum, Algo::RecDbl).wait(); }),
            2 * (N - N / n) * 8);
}

TEST(Counters, VendorCountsBusBytes) {
  MpiCommunicator c(MPI_COMM_WORLD);
  const int n = c.size();
  std::vector<float> x(1000, 1.0f);
  EXPECT_EQ(sent_by(c, Op::Allreduce, [&] { c.allreduce(x.data(), x.data(), 1000, ReduceOp::Sum, Algo::Vendor).wait(); }),
            std::int64_t(4000.0 * busbw_factor(Op::Allreduce, n)));
  EXPECT_EQ(x[0], float(n));
}

TEST(Counters, BusBytesAreTheSameForEveryAlgorithm) {
  // What a strategy's traffic is compared by (ZeRO against partrain-dp): the operation's size times nccl-tests' bus
  // factor, whichever algorithm moved it — the shm algorithm's copies counted half of the ring's bytes sent.
  MpiCommunicator c(MPI_COMM_WORLD);
  const int n = c.size(), r = c.rank();
  const std::int64_t N = 4099, B = 4 * N;
  auto x = inputs<float>(r, N);
  std::vector<float> y(static_cast<std::size_t>(N) * std::size_t(n));
  auto bus = [&](Op op, const std::function<void()>& f) {
    const auto before = c.counters()[op].bus_bytes;
    f();
    return c.counters()[op].bus_bytes - before;
  };
  for (Algo a : runnable_algorithms(c, Op::Allreduce))
    EXPECT_EQ(bus(Op::Allreduce, [&] { c.allreduce(x.data(), y.data(), N, ReduceOp::Sum, a).wait(); }),
              n == 1 ? 0 : std::llround(2.0 * (n - 1) / n * double(B)))
        << name(a);
  for (Algo a : runnable_algorithms(c, Op::ReduceScatter))
    EXPECT_EQ(bus(Op::ReduceScatter, [&] { c.reduce_scatter(x.data(), y.data(), N, ReduceOp::Sum, a).wait(); }),
              n == 1 ? 0 : std::llround(double(n - 1) / n * double(B)))
        << name(a);
  for (Algo a : runnable_algorithms(c, Op::Allgather)) {
    std::vector<float> mine(static_cast<std::size_t>(block_count(N, n, r)), 1.0f);
    EXPECT_EQ(bus(Op::Allgather, [&] { c.allgather(mine.data(), y.data(), N, a).wait(); }),
              n == 1 ? 0 : std::llround(double(n - 1) / n * double(B)))
        << name(a);
  }
  for (Algo a : runnable_algorithms(c, Op::Broadcast))
    EXPECT_EQ(bus(Op::Broadcast, [&] { c.broadcast(y.data(), N, DataType::Float, 0, a).wait(); }), n == 1 ? 0 : B)
        << name(a);
  for (Algo a : runnable_algorithms(c, Op::Alltoall)) {
    std::vector<float> in(static_cast<std::size_t>(N) * std::size_t(n), 1.0f);
    EXPECT_EQ(bus(Op::Alltoall, [&] { c.alltoall(in.data(), y.data(), N, DataType::Float, a).wait(); }),
              n == 1 ? 0 : std::llround(double(n - 1) / n * double(B * n)))
        << name(a);
  }
  // alltoallv: rank r sends r + j + 1 elements to j; bus bytes = what goes to the other ranks, and so do the bytes
  // sent; the bytes received are what the others send to r
  std::vector<std::int64_t> sc(static_cast<std::size_t>(n)), rc(static_cast<std::size_t>(n));
  std::int64_t out = 0, in_bytes = 0, total = 0, rtotal = 0;
  for (int j = 0; j < n; ++j) {
    sc[std::size_t(j)] = r + j + 1;
    rc[std::size_t(j)] = j + r + 1;
    total += sc[std::size_t(j)];
    rtotal += rc[std::size_t(j)];
    if (j != r) out += 4 * sc[std::size_t(j)], in_bytes += 4 * rc[std::size_t(j)];
  }
  for (Algo a : runnable_algorithms(c, Op::Alltoall)) {
    std::vector<float> in(static_cast<std::size_t>(total), 1.0f), got(static_cast<std::size_t>(rtotal));
    const auto before = c.counters()[Op::Alltoall];
    EXPECT_EQ(bus(Op::Alltoall, [&] { c.alltoallv(in.data(), sc.data(), got.data(), rc.data(), a).wait(); }), out)
        << name(a);
    EXPECT_EQ(c.counters()[Op::Alltoall].bytes_sent - before.bytes_sent, out) << name(a);
    EXPECT_EQ(c.counters()[Op::Alltoall].bytes_received - before.bytes_received, in_bytes) << name(a);
  }
}
