// Nonblocking behaviour: several operations in flight at once on two communicators, progressed by test() while
// other work runs in between; many small allreduces wait through the helper, by the policy (counted turns and yields).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "coll_test_util.hpp"

using namespace partrain;
using namespace partrain::coll;
using namespace partrain::test;

TEST(Progress, SeveralRequestsInFlightWithWorkInBetween) {
  MpiCommunicator c(MPI_COMM_WORLD);
  auto other = c.split(0, c.size() - c.rank());  // same group, reversed order: a second communicator
  const int n = c.size(), r = c.rank();
  const std::int64_t count = 100003;
  auto a = inputs<float>(r, count), b = inputs<float>(r, count);
  std::vector<double> g(static_cast<std::size_t>(count));
  const int orank = other->rank();
  ASSERT_EQ(orank, n - 1 - r);
  auto mine = inputs<double>(r, block_count(count, n, orank), block_offset(count, n, orank));
  std::vector<Request> reqs;
  reqs.push_back(c.allreduce(a.data(), a.data(), count, ReduceOp::Sum, Algo::Ring));
  reqs.push_back(c.allreduce(b.data(), b.data(), count, ReduceOp::Max, Algo::RecDbl));
  reqs.push_back(other->allgather(mine.data(), g.data(), count, Algo::Ring));
  double sink = 0;
  int polls = 0;
  for (bool all = false; !all; ++polls) {
    for (int i = 0; i < 2000; ++i) sink += std::sqrt(double(i + polls));  // "compute" between progress calls
    all = true;
    for (auto& q : reqs) all = q.test() && all;
  }
  EXPECT_GT(sink, 0);
  for (std::int64_t i = 0; i < count; ++i) {
    ASSERT_EQ(a[i], float(sum_value(n, i)));
    ASSERT_EQ(b[i], float(max_value(n, i)));
  }
  // `other` orders ranks in reverse: its rank k is world rank n-1-k, so block k holds world rank n-1-k's data
  for (int k = 0; k < n; ++k)
    for (std::int64_t i = block_offset(count, n, k); i < block_offset(count, n, k) + block_count(count, n, k); ++i)
      ASSERT_EQ(g[i], input_value(n - 1 - k, i));
}

TEST(Progress, ThousandSmallAllreducesWaitByThePolicy) {
  // What makes many small allreduces fast on an oversubscribed machine is that every waiting turn yields the core
  // (a spinning rank holds the core its partner needs until the scheduler's tick): checked by counting the turns
  // and yields, not by timing them. The time per call is a benchmark: partrain-collectives -o allreduce -b 4 -e 4
  // under PARTRAIN_WAIT=spin and =yield (docs/performance.md).
  MpiCommunicator c(MPI_COMM_WORLD);
  float x = 1.0f, y = 0;
  c.allreduce(&x, &y, 1).wait();  // warm up
  c.barrier().wait();
  const WaitCounters before = wait_counters();
  for (int i = 0; i < 1000; ++i) {
    x = float(c.rank() + i);
    c.allreduce(&x, &y, 1).wait();
    ASSERT_EQ(y, float(c.size() * (c.size() - 1) / 2 + c.size() * i));
  }
  const WaitCounters after = wait_counters();
  const std::int64_t turns = after.turns - before.turns, yields = after.yields - before.yields;
  std::printf("[rank %d] 1000 one-float allreduces at %d ranks: %lld waiting turns, %lld yields (policy %s)\n", c.rank(),
              c.size(), (long long)turns, (long long)yields, wait_policy_name(wait_policy()));
  if (wait_policy() == WaitPolicy::Yield) EXPECT_EQ(yields, turns);
  else EXPECT_EQ(yields, 0);
  if (c.size() == 1) EXPECT_EQ(turns, 0);  // a group of one completes at once
  // Under each policy explicitly, whatever the machine: the helper does what it is told.
  for (WaitPolicy p : {WaitPolicy::Spin, WaitPolicy::Yield}) {
    const WaitCounters b = wait_counters();
    for (int i = 0; i < 100; ++i) c.allreduce(&x, &y, 1).wait(p);
    const WaitCounters a = wait_counters();
    if (p == WaitPolicy::Spin) EXPECT_EQ(a.yields, b.yields) << "spinning waits yielded";
    else EXPECT_EQ(a.yields - b.yields, a.turns - b.turns) << "a yielding wait spun";
  }
}
