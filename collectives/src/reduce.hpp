// Local reduction of a received chunk: dst[i] = a[i] ⊕ b[i] (dst may be a). Plain loops over raw pointers, which
// the compiler vectorises; sum and max, float and double.
#pragma once

#include <cstdint>

#include "partrain/collectives/types.hpp"

namespace partrain::coll {

template <class T>
inline void reduce_loop(ReduceOp op, T* dst, const T* a, const T* b, std::int64_t n) {
  if (op == ReduceOp::Sum) {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = a[i] + b[i];
  } else {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = a[i] > b[i] ? a[i] : b[i];
  }
}

inline void reduce(DataType dt, ReduceOp op, void* dst, const void* a, const void* b, std::int64_t n) {
  if (dt == DataType::Float)
    reduce_loop(op, static_cast<float*>(dst), static_cast<const float*>(a), static_cast<const float*>(b), n);
  else
    reduce_loop(op, static_cast<double*>(dst), static_cast<const double*>(a), static_cast<const double*>(b), n);
}

}  // namespace partrain::coll
