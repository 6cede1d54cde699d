// Run on several real MPI nodes (the virtual cluster of scripts/vcluster; tests/cluster/CMakeLists.txt launches it
// at 2 nodes × 1 and 2 nodes × 2 ranks): the nodes are found from MPI's shared-memory domains — no pretend flag —
// and agree with the host names; shm runs inside a node and is refused across nodes; auto picks hier across nodes
// and shm within one; hier matches the flat ring exactly; a tensor-parallel group stays inside a node; the wait
// policy counts every rank on this machine's cores, not only the node's. PARTRAIN_EXPECT_NODES says how many nodes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <string>

#include "../mpi/coll_test_util.hpp"
#include "partrain/collectives/process_grid.hpp"
#include "partrain/collectives/wait.hpp"
#include "partrain/core/error.hpp"

using namespace partrain;
using namespace partrain::coll;
using namespace partrain::test;

namespace {
int expected_nodes() {
  const char* e = std::getenv("PARTRAIN_EXPECT_NODES");
  return e ? std::atoi(e) : 1;
}

std::string hostname() {
  char h[256] = {};
  gethostname(h, sizeof h - 1);
  return h;
}

/// Every rank's host name, in rank order.
std::vector<std::string> hostnames(MPI_Comm comm) {
  int n = 1;
  MPI_Comm_size(comm, &n);
  char mine[64] = {};
  hostname().copy(mine, sizeof mine - 1);
  std::vector<char> all(64 * static_cast<std::size_t>(n));
  MPI_Allgather(mine, 64, MPI_CHAR, all.data(), 64, MPI_CHAR, comm);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.emplace_back(all.data() + 64 * i);
  return out;
}
}  // namespace

TEST(Nodes, FoundFromTheSharedMemoryDomainsAndTheHostNames) {
  MpiCommunicator c(MPI_COMM_WORLD);
  const auto hosts = hostnames(MPI_COMM_WORLD);
  const int nodes = int(std::set<std::string>(hosts.begin(), hosts.end()).size());
  ASSERT_EQ(nodes, expected_nodes()) << "host names seen by the ranks";
  EXPECT_EQ(c.single_node(), nodes == 1);
  int local = 1;
  MPI_Comm_size(node_world(), &local);
  EXPECT_EQ(local * nodes, c.size()) << "ranks in this rank's shared-memory domain";
  for (const auto& h : hostnames(node_world())) EXPECT_EQ(h, hostname()) << "a node's ranks share its host name";
  if (nodes > 1 && local > 1) {
    ASSERT_NE(c.node_comm(), nullptr);
    EXPECT_EQ(c.node_comm()->size(), local);
    EXPECT_EQ(c.cross_comm()->size(), nodes);
    const auto across = hostnames(c.cross_comm()->comm());
    EXPECT_EQ(int(std::set<std::string>(across.begin(), across.end()).size()), nodes) << "one rank per node";
  }
}

TEST(Nodes, ShmWithinANodeHierAcrossAutoChooses) {
  MpiCommunicator world(MPI_COMM_WORLD), node(node_world());
  const int nodes = expected_nodes();
  std::vector<float> x(1000, 1.0f);
  if (nodes > 1) {
    EXPECT_THROW(world.allreduce(x.data(), x.data(), 1000, ReduceOp::Sum, Algo::Shm).wait(), InputError);
    if (world.node_comm()) {
      EXPECT_EQ(world.resolve(Op::Allreduce, Algo::Auto, 1 << 20), Algo::Hier);
      EXPECT_EQ(world.resolve(Op::Allreduce, Algo::Auto, 1 << 10), Algo::RecDbl);
    } else {  // one rank per node: nothing to share inside a node
      EXPECT_EQ(world.resolve(Op::Allreduce, Algo::Auto, 1 << 20), Algo::Ring);
    }
    EXPECT_NE(world.resolve(Op::Allgather, Algo::Auto, 1 << 20), Algo::Shm);
  }
  if (node.size() > 1) {
    EXPECT_EQ(node.resolve(Op::Allreduce, Algo::Auto, 1 << 20), Algo::Shm);
  }
  node.allreduce(x.data(), x.data(), 1000, ReduceOp::Sum, node.size() > 1 ? Algo::Shm : Algo::Auto).wait();
  for (float v : x) ASSERT_EQ(v, float(node.size()));
}

TEST(Nodes, HierMatchesTheFlatRingAcrossRealNodes) {
  MpiCommunicator c(MPI_COMM_WORLD);
  for (std::int64_t count : {0, 1, 7, 4099, 262144, 1000003})
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max})
      for (bool in_place : {false, true}) {
        SCOPED_TRACE("count " + std::to_string(count) + (in_place ? " in place" : ""));
        expect_hier_matches_flat(c, count, op, in_place);
      }
}

TEST(Nodes, TensorParallelGroupsStayInsideANode) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  int local = 1;
  MPI_Comm_size(node_world(), &local);
  if (local < 2) GTEST_SKIP() << "one rank per node: a tensor-parallel group must span nodes";
  ProcessGrid pg(MPI_COMM_WORLD, GridShape{1, world / local, local});
  for (const auto& h : hostnames(pg.tp().comm())) EXPECT_EQ(h, hostname()) << "tp group crosses a node";
  const auto dp_hosts = hostnames(pg.dp().comm());
  EXPECT_EQ(int(std::set<std::string>(dp_hosts.begin(), dp_hosts.end()).size()), world / local)
      << "a data-parallel group takes one rank per node";
}

TEST(Nodes, WaitPolicyCountsEveryRankOnThisMachine) {
  // every node of the virtual cluster runs on this machine's cores: the policy counts all the ranks under this kernel
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof set, &set);
  if (std::getenv("PARTRAIN_WAIT")) GTEST_SKIP() << "PARTRAIN_WAIT overrides the detection";
  EXPECT_EQ(detect_wait_policy(MPI_COMM_WORLD), world > CPU_COUNT(&set) ? WaitPolicy::Yield : WaitPolicy::Spin);
}

TEST(Nodes, HierCallsInFlightTogetherMatchTheirPartners) {
  // as data-parallel buckets are: several posted at once, waited for in reverse order, each rank testing them
  // at its own pace — every call's node and cross-node steps must pair with the same call on the other ranks
  MpiCommunicator c(MPI_COMM_WORLD);
  const int n = c.size(), r = c.rank();
  set_watchdog(60);  // mismatched partners hang rather than fail: end the test with a line saying so
  for (int round = 0; round < 5; ++round) {
    std::vector<std::vector<float>> bufs;
    std::vector<Request> reqs;
    for (int k = 0; k < 7; ++k) bufs.push_back(inputs<float>(r, 1000 + 37731 * k));
    for (int k = 0; k < 7; ++k) {
      reqs.push_back(c.allreduce(bufs[std::size_t(k)].data(), bufs[std::size_t(k)].data(),
                                 std::int64_t(bufs[std::size_t(k)].size()), ReduceOp::Sum, Algo::Hier));
      if ((r + k + round) % 3 == 0) reqs.back().test();  // ranks progress differently
    }
    for (int k = 6; k >= 0; --k) reqs[std::size_t(k)].wait();
    for (int k = 0; k < 7; ++k) {
      std::int64_t bad = 0;
      for (std::size_t i = 0; i < bufs[std::size_t(k)].size(); ++i)
        bad += bufs[std::size_t(k)][i] != float(sum_value(n, std::int64_t(i)));
      EXPECT_EQ(bad, 0) << "call " << k << " of round " << round;
    }
  }
  set_watchdog(0);
}
