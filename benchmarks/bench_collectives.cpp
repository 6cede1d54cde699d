// Single-rank parts of the collectives: the reduction of a received chunk (dst = a + b) and the chunk copy, at
// the ring's default chunk (256 KiB, cache-resident) and at 64 MiB (memory-bound). Bytes processed count every
// byte read and written (reduce: 3 per element, copy: 2), so the figures compare with memory bandwidth.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "reduce.hpp"

using namespace partrain::coll;

static void BM_ReduceSumFloat(benchmark::State& state) {
  const std::int64_t n = state.range(0) / 4;
  std::vector<float> a(std::size_t(n), 1.0f), b(std::size_t(n), 2.0f);
  for (auto _ : state) {
    reduce(DataType::Float, ReduceOp::Sum, a.data(), a.data(), b.data(), n);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * 4 * 3);
}

// Buffers page-aligned, the destination `range(1)` bytes past a page boundary. Measured on the build machine
// (AMD EPYC, glibc 2.36): memcpy of 256 KiB runs at ~70 GB/s when (dst − src) mod 4096 is 0 or 32, and at
// ~5 GB/s when it is 16 — malloc'd neighbours land exactly there — so buffers the suite copies between are
// allocated page-aligned.
static void BM_ChunkCopy(benchmark::State& state) {
  const std::size_t bytes = std::size_t(state.range(0)), skew = std::size_t(state.range(1));
  char* a = static_cast<char*>(std::aligned_alloc(4096, bytes + 4096));
  char* b = static_cast<char*>(std::aligned_alloc(4096, bytes + 4096));
  std::memset(a, 1, bytes + 4096);
  std::memset(b, 2, bytes + 4096);
  for (auto _ : state) {
    std::memcpy(b + skew, a, bytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(bytes) * 2);
  std::free(a);
  std::free(b);
}

// The 2-rank zero-copy allreduce's local work on one share: both buffers summed, the sum written into both.
// One pass (reduce_many with two destinations) against the former two passes (sum into a, then copy a to b).
// Bytes processed: 4 per element and buffer (read and written).
static void BM_ZeroCopyShare(benchmark::State& state) {
  const std::int64_t n = state.range(0) / 4;
  const bool one_pass = state.range(1) != 0;
  float* a = static_cast<float*>(std::aligned_alloc(4096, std::size_t(n) * 4 + 4096));
  float* b = static_cast<float*>(std::aligned_alloc(4096, std::size_t(n) * 4 + 4096));
  std::fill(a, a + n, 1.0f);
  std::fill(b, b + n, 2.0f);
  const std::vector<const void*> srcs{a, b};
  const std::vector<void*> both{a, b}, first{a};
  for (auto _ : state) {
    if (one_pass) {
      reduce_many(DataType::Float, ReduceOp::Sum, both, srcs, n);
    } else {
      reduce_many(DataType::Float, ReduceOp::Sum, first, srcs, n);
      copy_bytes(b, a, n * 4);
    }
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * 4 * 4);
  std::free(a);
  std::free(b);
}

BENCHMARK(BM_ZeroCopyShare)->ArgsProduct({{64 << 10, 512 << 10, 4 << 20}, {0, 1}});
BENCHMARK(BM_ReduceSumFloat)->Arg(256 << 10)->Arg(64 << 20);
BENCHMARK(BM_ChunkCopy)->Args({256 << 10, 0})->Args({256 << 10, 16})->Args({64 << 20, 0});
BENCHMARK_MAIN();
