// The interface each operation of partrain-collectives fills (one file per operation, as nccl-tests does):
// buffer sizes, exactly verifiable input, the call, and the count of wrong output elements.
// Inputs follow one rule: element i of rank r is (r + 1)·(i mod 97 + 1), small integers whose sums are exact; in the
// 16-bit types (r mod 2 + 1)·2^(i mod 4), whose partial sums k·2^j (k ≤ 2n) stay exact in bf16's 8 bits up to 128 ranks.
#pragma once

#include <cstdint>
#include <memory>

#include "partrain/collectives/communicator.hpp"
#include "partrain/core/half.hpp"

namespace partrain::coll::bench {

inline double input_value(int rank, std::int64_t i, DataType dt) {
  if (size_of(dt) == 2) return double(rank % 2 + 1) * double(1 << (i % 4));
  return double(rank + 1) * double(i % 97 + 1);
}
/// Σ over n ranks of input_value(r, i).
inline double input_sum(int n, std::int64_t i, DataType dt) {
  double s = 0;
  for (int r = 0; r < n; ++r) s += input_value(r, i, dt);
  return s;
}

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
/// alltoall with uneven shares (alltoallv): `skew` times as many elements to rank 0 as to each other rank.
std::unique_ptr<BenchOp> make_alltoall_skewed(double skew);
std::unique_ptr<BenchOp> make_bench_op(Op op, double skew = 1.0);

// Typed helpers: fill or check `n` elements at `p` (float, double, bf16, fp16) against f(i).
template <class T, class F>
void fill_typed(void* p, std::int64_t n, F f) {
  for (std::int64_t i = 0; i < n; ++i) static_cast<T*>(p)[i] = T(f(i));
}
template <class F>
void fill(DataType dt, void* p, std::int64_t n, F f) {
  switch (dt) {
    case DataType::Float: return fill_typed<float>(p, n, [&](std::int64_t i) { return float(f(i)); });
    case DataType::Double: return fill_typed<double>(p, n, f);
    case DataType::BF16: return fill_typed<bf16>(p, n, [&](std::int64_t i) { return float(f(i)); });
    case DataType::F16: return fill_typed<fp16>(p, n, [&](std::int64_t i) { return float(f(i)); });
  }
}

template <class T, class F>
std::int64_t count_wrong_typed(const void* p, std::int64_t n, F f) {
  std::int64_t bad = 0;
  for (std::int64_t i = 0; i < n; ++i) bad += double(static_cast<const T*>(p)[i]) != double(T(f(i)));
  return bad;
}
template <class F>
std::int64_t count_wrong(DataType dt, const void* p, std::int64_t n, F f) {
  switch (dt) {
    case DataType::Float: return count_wrong_typed<float>(p, n, [&](std::int64_t i) { return float(f(i)); });
    case DataType::Double: return count_wrong_typed<double>(p, n, f);
    case DataType::BF16: return count_wrong_typed<bf16>(p, n, [&](std::int64_t i) { return float(f(i)); });
    case DataType::F16: return count_wrong_typed<fp16>(p, n, [&](std::int64_t i) { return float(f(i)); });
  }
  return n;
}

inline void* offset(void* p, std::int64_t elems, DataType dt) {
  return static_cast<char*>(p) + elems * std::int64_t(size_of(dt));
}
inline const void* offset(const void* p, std::int64_t elems, DataType dt) {
  return static_cast<const char*>(p) + elems * std::int64_t(size_of(dt));
}

}  // namespace partrain::coll::bench
