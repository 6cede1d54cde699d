// Local reduction of a received chunk: dst[i] = a[i] ⊕ b[i] (dst may be a). Plain loops over raw pointers, which
// the compiler vectorises; sum and max, float and double.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

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

/// dst[0, bytes) = src[0, bytes) for non-overlapping buffers. glibc's memcpy (rep movsb) drops from ~70 GB/s to
/// ~4 GB/s on the build machine when (dst − src) mod 4096 is 8, 16 or 24 (measured; see
/// benchmarks/bench_collectives.cpp), and the collectives copy between buffers whose relative alignment they do not
/// choose: within 64 bytes of that case, copy with plain 32-byte vector moves (~40 GB/s) instead.
inline void copy_bytes(void* dst, const void* src, std::int64_t bytes) {
  auto* d = static_cast<char*>(dst);
  const auto* s = static_cast<const char*>(src);
  const auto skew = (reinterpret_cast<std::uintptr_t>(d) - reinterpret_cast<std::uintptr_t>(s)) & 4095u;
  if (skew == 0 || skew >= 64 || bytes < 4096) {
    __builtin_memcpy(d, s, std::size_t(bytes));
    return;
  }
  std::int64_t i = 0;
  for (; i + 32 <= bytes; i += 32) {
    float v[8];
    __builtin_memcpy(v, s + i, 32);  // fixed size: one vector load and one store
    __builtin_memcpy(d + i, v, 32);
  }
  for (; i < bytes; ++i) d[i] = s[i];
}

inline void reduce(DataType dt, ReduceOp op, void* dst, const void* a, const void* b, std::int64_t n) {
  if (dt == DataType::Float)
    reduce_loop(op, static_cast<float*>(dst), static_cast<const float*>(a), static_cast<const float*>(b), n);
  else
    reduce_loop(op, static_cast<double*>(dst), static_cast<const double*>(a), static_cast<const double*>(b), n);
}

}  // namespace partrain::coll

namespace partrain::coll {

/// dst = srcs[0] ⊕ srcs[1] ⊕ … in that order (the same bits on every rank), reading each source once and writing
/// dst once; dst may be one of the sources. Blocks of 1024 elements are combined in a stack buffer.
template <class T>
inline void reduce_many_loop(ReduceOp op, T* dst, const std::vector<const void*>& srcs, std::int64_t n) {
  constexpr std::int64_t kBlock = 1024;
  T acc[kBlock];
  for (std::int64_t lo = 0; lo < n; lo += kBlock) {
    const std::int64_t m = n - lo < kBlock ? n - lo : kBlock;
    const T* s0 = static_cast<const T*>(srcs[0]) + lo;
    for (std::int64_t i = 0; i < m; ++i) acc[i] = s0[i];
    for (std::size_t r = 1; r < srcs.size(); ++r) reduce_loop(op, acc, acc, static_cast<const T*>(srcs[r]) + lo, m);
    for (std::int64_t i = 0; i < m; ++i) dst[lo + i] = acc[i];
  }
}

inline void reduce_many(DataType dt, ReduceOp op, void* dst, const std::vector<const void*>& srcs, std::int64_t n) {
  if (dt == DataType::Float) reduce_many_loop(op, static_cast<float*>(dst), srcs, n);
  else reduce_many_loop(op, static_cast<double*>(dst), srcs, n);
}

}  // namespace partrain::coll
