// Local reduction of a received chunk: dst[i] = a[i] ⊕ b[i] (dst may be a). Plain loops over raw pointers, which
// the compiler vectorises; sum and max, float and double.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>
#if defined(__AVX__)
#include <immintrin.h>
#endif

#include "partrain/collectives/types.hpp"
#include "partrain/core/half.hpp"

namespace partrain::coll {

/// fp16 ↔ fp32 of m elements: the CPU's conversion instructions where the build targets them (F16C; the same
/// round-to-nearest-even as fp16's own conversion, checked in tests/unit/test_precision.cpp), else element by element.
template <class H>
inline void widen(const H* s, float* d, std::int64_t m) {
#if defined(__F16C__)
  if constexpr (std::is_same_v<H, fp16>) {
    std::int64_t i = 0;
    for (; i + 8 <= m; i += 8)
      _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
    for (; i < m; ++i) d[i] = float(s[i]);
    return;
  }
#endif
  for (std::int64_t i = 0; i < m; ++i) d[i] = float(s[i]);
}
template <class H>
inline void narrow(const float* s, H* d, std::int64_t m) {
#if defined(__F16C__)
  if constexpr (std::is_same_v<H, fp16>) {
    std::int64_t i = 0;
    for (; i + 8 <= m; i += 8)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                       _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < m; ++i) d[i] = s[i];
    return;
  }
#endif
  for (std::int64_t i = 0; i < m; ++i) d[i] = s[i];
}

/// The 16-bit types: every source widened, the sum (or max) in fp32 in source order, one rounding per destination
/// element; blocks of 256 elements through an fp32 buffer on the stack, so the conversions vectorise.
template <class H>
inline void reduce_many_half(ReduceOp op, const std::vector<void*>& dsts, const std::vector<const void*>& srcs,
                             std::int64_t n) {
  constexpr std::int64_t kB = 256;
  float acc[kB], in[kB];
  for (std::int64_t lo = 0; lo < n; lo += kB) {
    const std::int64_t m = std::min(kB, n - lo);
    widen(static_cast<const H*>(srcs[0]) + lo, acc, m);
    for (std::size_t r = 1; r < srcs.size(); ++r) {
      widen(static_cast<const H*>(srcs[r]) + lo, in, m);
      if (op == ReduceOp::Sum)
        for (std::int64_t i = 0; i < m; ++i) acc[i] += in[i];
      else
        for (std::int64_t i = 0; i < m; ++i) acc[i] = std::max(acc[i], in[i]);
    }
    for (void* d : dsts) narrow(acc, static_cast<H*>(d) + lo, m);
  }
}

template <class T>
inline void reduce_loop(ReduceOp op, T* dst, const T* a, const T* b, std::int64_t n) {
  if constexpr (is_half_v<T>) {  // in fp32, one rounding per element
    reduce_many_half<T>(op, {dst}, {a, b}, n);
    return;
  }
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

/// Non-temporal stores, for outputs too large to stay in the last-level cache: they skip the read-for-ownership
/// of every destination line, a third of the memory traffic of a copy. stream_vectors stores four 32-byte vectors
/// (128 bytes) at a 32-byte aligned address; stream_fence() must precede any flag that publishes the data (the
/// stores are weakly ordered). Without AVX the stores are plain.
template <class V>
inline void stream_vectors(void* dst, V a0, V a1, V a2, V a3) {
  static_assert(sizeof(V) == 32);
#if defined(__AVX__)
  auto* d = static_cast<__m256i*>(dst);
  __m256i v[4];
  std::memcpy(&v[0], &a0, 32);
  std::memcpy(&v[1], &a1, 32);
  std::memcpy(&v[2], &a2, 32);
  std::memcpy(&v[3], &a3, 32);
  _mm256_stream_si256(d, v[0]);
  _mm256_stream_si256(d + 1, v[1]);
  _mm256_stream_si256(d + 2, v[2]);
  _mm256_stream_si256(d + 3, v[3]);
#else
  auto* d = static_cast<char*>(dst);
  std::memcpy(d, &a0, 32);
  std::memcpy(d + 32, &a1, 32);
  std::memcpy(d + 64, &a2, 32);
  std::memcpy(d + 96, &a3, 32);
#endif
}
inline void stream_fence() {
#if defined(__AVX__)
  _mm_sfence();
#endif
}
/// copy_bytes with non-temporal stores.
inline void stream_copy(void* dst, const void* src, std::int64_t bytes) {
  auto* d = static_cast<char*>(dst);
  const auto* s = static_cast<const char*>(src);
  const auto to_aligned = std::int64_t((32 - reinterpret_cast<std::uintptr_t>(d) % 32) % 32);
  const std::int64_t head = std::min(bytes, to_aligned);
  copy_bytes(d, s, head);
  typedef char V __attribute__((vector_size(32)));
  auto load = [](const char* p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  };
  std::int64_t i = head;
  for (; i + 128 <= bytes; i += 128)
    stream_vectors(d + i, load(s + i), load(s + i + 32), load(s + i + 64), load(s + i + 96));
  copy_bytes(d + i, s + i, bytes - i);
}

template <class T>
inline void reduce_typed(ReduceOp op, void* dst, const void* a, const void* b, std::int64_t n) {
  reduce_loop(op, static_cast<T*>(dst), static_cast<const T*>(a), static_cast<const T*>(b), n);
}

inline void reduce(DataType dt, ReduceOp op, void* dst, const void* a, const void* b, std::int64_t n) {
  switch (dt) {
    case DataType::Float: return reduce_typed<float>(op, dst, a, b, n);
    case DataType::Double: return reduce_typed<double>(op, dst, a, b, n);
    case DataType::BF16: return reduce_typed<bf16>(op, dst, a, b, n);
    case DataType::F16: return reduce_typed<fp16>(op, dst, a, b, n);
  }
}

}  // namespace partrain::coll

namespace partrain::coll {

/// dsts[k] = srcs[0] ⊕ srcs[1] ⊕ … in that order (the same bits on every rank) for every k: one pass that reads
/// each source once and writes each destination once; a destination may be one of the sources. Works on blocks of
/// four 32-byte vectors (GCC/Clang vector extensions) held in registers, every source's block loaded before any
/// destination's is stored. (An earlier version accumulated 4 KiB blocks in a stack buffer — 3× slower in L2 —
/// and wrote a second destination in a second pass, which read the sum back after it had left the L2 cache.)
/// With `stream_first`, dsts[0] is written with non-temporal stores (see stream_vectors).
template <class T, bool kSum>
inline void reduce_many_op(const std::vector<void*>& dsts, const std::vector<const void*>& srcs, std::int64_t n,
                           bool stream_first) {
  typedef T V __attribute__((vector_size(32)));
  constexpr std::int64_t kLanes = 32 / std::int64_t(sizeof(T)), kBlock = 4 * kLanes;
  const std::size_t ns = srcs.size(), nd = dsts.size();
  const T* const* s = reinterpret_cast<const T* const*>(srcs.data());
  T* const* d = reinterpret_cast<T* const*>(dsts.data());
  auto combine = [](auto a, auto b) {
    if constexpr (kSum) return a + b;
    else return a > b ? a : b;
  };
  std::int64_t lo = 0;
  if (stream_first)  // up to the first 32-byte aligned element of dsts[0] one at a time (see the tail loop)
    while (lo < n && reinterpret_cast<std::uintptr_t>(d[0] + lo) % 32 != 0) ++lo;
  const std::int64_t head = stream_first ? lo : 0;
  auto load = [](const T* p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  };
  auto store = [](T* p, V v) { std::memcpy(p, &v, sizeof v); };
  for (; lo + kBlock <= n; lo += kBlock) {  // four named vectors: arrays of them went through the stack
    V a0 = load(s[0] + lo), a1 = load(s[0] + lo + kLanes), a2 = load(s[0] + lo + 2 * kLanes),
      a3 = load(s[0] + lo + 3 * kLanes);
    for (std::size_t r = 1; r < ns; ++r) {
      const T* q = s[r] + lo;
      a0 = combine(a0, load(q));
      a1 = combine(a1, load(q + kLanes));
      a2 = combine(a2, load(q + 2 * kLanes));
      a3 = combine(a3, load(q + 3 * kLanes));
    }
    std::size_t k = 0;
    if (stream_first) stream_vectors(d[k++] + lo, a0, a1, a2, a3);
    for (; k < nd; ++k) {
      T* p = d[k] + lo;
      store(p, a0);
      store(p + kLanes, a1);
      store(p + 2 * kLanes, a2);
      store(p + 3 * kLanes, a3);
    }
  }
  auto one = [&](std::int64_t i) {
    T acc = s[0][i];
    for (std::size_t r = 1; r < ns; ++r) acc = combine(acc, s[r][i]);
    for (std::size_t k = 0; k < nd; ++k) d[k][i] = acc;
  };
  for (std::int64_t i = 0; i < head; ++i) one(i);
  for (; lo < n; ++lo) one(lo);
}

template <class T>
inline void reduce_many_loop(ReduceOp op, const std::vector<void*>& dsts, const std::vector<const void*>& srcs,
                             std::int64_t n, bool stream_first) {
  if (op == ReduceOp::Sum) reduce_many_op<T, true>(dsts, srcs, n, stream_first);
  else reduce_many_op<T, false>(dsts, srcs, n, stream_first);
}

inline void reduce_many(DataType dt, ReduceOp op, const std::vector<void*>& dsts, const std::vector<const void*>& srcs,
                        std::int64_t n, bool stream_first = false) {
  switch (dt) {
    case DataType::Float: return reduce_many_loop<float>(op, dsts, srcs, n, stream_first);
    case DataType::Double: return reduce_many_loop<double>(op, dsts, srcs, n, stream_first);
    case DataType::BF16: return reduce_many_half<bf16>(op, dsts, srcs, n);
    case DataType::F16: return reduce_many_half<fp16>(op, dsts, srcs, n);
  }
}

}  // namespace partrain::coll
