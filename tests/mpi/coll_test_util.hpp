// Exactly verifiable inputs for collective tests: element i of rank r is (r + 1)·(i mod 97 + 1), small integers
// whose sums and maxima are exact in float and double, so results are compared with ==.
#pragma once

#include <gtest/gtest.h>
#include <mpi.h>

#include <vector>

#include "partrain/collectives/mpi_communicator.hpp"

namespace partrain::test {

inline double input_value(int rank, std::int64_t i) { return double(rank + 1) * double(i % 97 + 1); }
inline double sum_value(int n, std::int64_t i) { return double(n) * double(n + 1) / 2 * double(i % 97 + 1); }
inline double max_value(int n, std::int64_t i) { return double(n) * double(i % 97 + 1); }

/// The ranks of MPI_COMM_WORLD on this rank's node (MPI's shared-memory domain): all of them on one machine, one
/// node's share on the virtual cluster (scripts/vcluster) or a real one — where the shm algorithm can run.
inline MPI_Comm node_world() {
  static MPI_Comm node = [] {
    MPI_Comm c;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &c);
    return c;
  }();
  return node;
}

/// The algorithms that implement `op` and can run on `c`: shm only when every rank is on one node.
inline std::vector<coll::Algo> runnable_algorithms(const coll::MpiCommunicator& c, coll::Op op) {
  std::vector<coll::Algo> out;
  for (coll::Algo a : coll::algorithms_for(op))
    if (a != coll::Algo::Shm || c.single_node()) out.push_back(a);
  return out;
}

template <class T>
std::vector<T> inputs(int rank, std::int64_t count, std::int64_t first = 0) {
  std::vector<T> v(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) v[std::size_t(i)] = T(input_value(rank, first + i));
  return v;
}


/// One hierarchical allreduce of `count` floats (in place or not) against the flat ring's result and the closed form:
/// both exactly.
inline void expect_hier_matches_flat(coll::MpiCommunicator& c, std::int64_t count, coll::ReduceOp op, bool in_place) {
  const int n = c.size(), r = c.rank();
  auto x = inputs<float>(r, count), y = x;
  std::vector<float> hier(static_cast<std::size_t>(count)), flat(hier.size());
  c.allreduce(in_place ? y.data() : x.data(), in_place ? y.data() : hier.data(), count, op, coll::Algo::Hier).wait();
  if (in_place) hier = y;
  c.allreduce(x.data(), flat.data(), count, op, coll::Algo::Ring).wait();
  EXPECT_EQ(hier, flat);
  std::int64_t bad = 0;
  for (std::int64_t i = 0; i < count; ++i)
    bad += hier[std::size_t(i)] != float(op == coll::ReduceOp::Sum ? sum_value(n, i) : max_value(n, i));
  EXPECT_EQ(bad, 0);
}
}  // namespace partrain::test
