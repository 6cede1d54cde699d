// The hierarchical allreduce on "pretend nodes" (consecutive groups of ranks on this machine): shm reduce-scatter
// inside each group, ring across groups, shm allgather — against the flat algorithms, exactly, for every count;
// and the fallbacks where the nodes differ in size or hold one rank each.
#include <gtest/gtest.h>

#include "coll_test_util.hpp"

using namespace partrain;
using namespace partrain::coll;
using namespace partrain::test;

TEST(Hierarchical, MatchesFlatOnPretendNodes) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (!MpiCommunicator(MPI_COMM_WORLD).single_node()) GTEST_SKIP() << "pretend nodes live inside one real node";
  for (int per_node : {1, 2, 3}) {
    MpiCommunicator c(MPI_COMM_WORLD, per_node);
    const bool equal_nodes = world % per_node == 0;
    EXPECT_EQ(c.single_node(), per_node >= world) << per_node;
    EXPECT_EQ(c.node_comm() != nullptr, per_node < world && per_node > 1 && equal_nodes) << per_node;
    if (c.node_comm()) {
      EXPECT_EQ(c.node_comm()->size(), per_node);
      EXPECT_EQ(c.cross_comm()->size(), world / per_node);
      EXPECT_EQ(c.resolve(Op::Allreduce, Algo::Auto, 1 << 20), Algo::Hier);
    }
    for (std::int64_t count : {0, 1, 7, 4099, 262144, 100003})
      for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max})
        for (bool in_place : {false, true}) {
          SCOPED_TRACE("per_node " + std::to_string(per_node) + " count " + std::to_string(count) +
                       (in_place ? " in place" : ""));
          expect_hier_matches_flat(c, count, op, in_place);
        }
  }
}
