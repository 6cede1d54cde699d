// The interface each operation of partrain-collectives fills (one file per operation, as nccl-tests does):
// buffer sizes, exactly verifiable input, the call, and the count of wrong output elements.
// Inputs follow one rule: element i of rank r is (r + 1)·(i mod 97 + 1), small integers whose sums are exact.
#pragma once

#include <cstdint>
#include <memory>

#include "partrain/collectives/communicator.hpp"

namespace partrain::coll::bench {

inline double input_value(int rank, std::int64_t i) { return double(rank + 1) * double(i % 97 + 1); }

class BenchOp {
 public:
  virtual ~BenchOp() = default;
  virtual Op op() const = 0;
  /// Whole-vector elements for a message of `bytes` bytes (alltoall rounds down to a multiple of n).
  virtual std::int64_t count_for(std::int64_t bytes, std::size_t esize, int) const { return bytes / std::int64_t(esize); }
  virtual std::int64_t send_elems(std::int64_t count, int n, int r) const = 0;
  virtual std::int64_t recv_elems(std::int64_t count, int n, int r) const = 0;
  /// Fills the buffers for one call (in place: the input goes where the call reads it).
  virtual void init(void* send, void* recv, std::int64_t count, DataType dt, int n, int r, bool in_place) const = 0;
  virtual Request run(Communicator& c, void* send, void* recv, std::int64_t count, DataType dt, Algo a,
                      bool in_place) const = 0;
  /// Output elements that differ from the exact answer.
  virtual std::int64_t wrong(const void* send, const void* recv, std::int64_t count, DataType dt, int n, int r,
                             bool in_place) const = 0;
};

std::unique_ptr<BenchOp> make_allreduce();
std::unique_ptr<BenchOp> make_reduce_scatter();
std::unique_ptr<BenchOp> make_allgather();
std::unique_ptr<BenchOp> make_broadcast();
std::unique_ptr<BenchOp> make_alltoall();
std::unique_ptr<BenchOp> make_bench_op(Op op);

// Typed helpers: fill or check `n` elements at `p` (float or double) against f(i).
template <class F>
void fill(DataType dt, void* p, std::int64_t n, F f) {
  if (dt == DataType::Float)
    for (std::int64_t i = 0; i < n; ++i) static_cast<float*>(p)[i] = float(f(i));
  else
    for (std::int64_t i = 0; i < n; ++i) static_cast<double*>(p)[i] = f(i);
}

template <class F>
std::int64_t count_wrong(DataType dt, const void* p, std::int64_t n, F f) {
  std::int64_t bad = 0;
  if (dt == DataType::Float)
    for (std::int64_t i = 0; i < n; ++i) bad += static_cast<const float*>(p)[i] != float(f(i));
  else
    for (std::int64_t i = 0; i < n; ++i) bad += static_cast<const double*>(p)[i] != f(i);
  return bad;
}

inline void* offset(void* p, std::int64_t elems, DataType dt) {
  return static_cast<char*>(p) + elems * std::int64_t(size_of(dt));
}
inline const void* offset(const void* p, std::int64_t elems, DataType dt) {
  return static_cast<const char*>(p) + elems * std::int64_t(size_of(dt));
}

}  // namespace partrain::coll::bench
