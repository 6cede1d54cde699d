// Exactly verifiable inputs for collective tests: element i of rank r is (r + 1)·(i mod 97 + 1), small integers
// whose sums and maxima are exact in float and double, so results are compared with ==.
#pragma once

#include <mpi.h>

#include <vector>

#include "partrain/collectives/mpi_communicator.hpp"

namespace partrain::test {

inline double input_value(int rank, std::int64_t i) { return double(rank + 1) * double(i % 97 + 1); }
inline double sum_value(int n, std::int64_t i) { return double(n) * double(n + 1) / 2 * double(i % 97 + 1); }
inline double max_value(int n, std::int64_t i) { return double(n) * double(i % 97 + 1); }

template <class T>
std::vector<T> inputs(int rank, std::int64_t count, std::int64_t first = 0) {
  std::vector<T> v(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) v[std::size_t(i)] = T(input_value(rank, first + i));
  return v;
}


}  // namespace partrain::test
