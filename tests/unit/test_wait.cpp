// The wait helper on every rank count: control-message allreduce and barrier through MPI_I* + test loop.
#include <gtest/gtest.h>

#include "partrain/collectives/wait.hpp"

using namespace partrain;

TEST(Wait, AllreduceThroughHelperSumsRanks) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  for (auto policy : {coll::WaitPolicy::Spin, coll::WaitPolicy::Yield}) {
    for (int it = 0; it < 100; ++it) {
      const int v = rank + it;
      int sum = 0;
      coll::allreduce(&v, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD, policy);
      ASSERT_EQ(sum, size * (size - 1) / 2 + size * it);
    }
    coll::barrier(MPI_COMM_WORLD, policy);
  }
}

TEST(Wait, PolicyYieldsWhenOversubscribed) {
  const auto p = coll::detect_wait_policy(MPI_COMM_WORLD);
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof set, &set);
  if (!std::getenv("PARTRAIN_WAIT") && size > CPU_COUNT(&set)) EXPECT_EQ(p, coll::WaitPolicy::Yield);
  EXPECT_STREQ(coll::wait_policy_name(coll::WaitPolicy::Yield), "yield");
}
