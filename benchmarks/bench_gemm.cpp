// gemm through KokkosBlas against cblas_sgemm called directly (the goal: ≥ 90% at 512³ and 1024³), for the
// y = x·Wᵀ shape the models use (N, T). FLOP/s is reported as items/s (1 item = 1 FLOP).
// The 16-bit gemms (kernels::gemm on bf16 / fp16 views: fp32 accumulation, one rounding of C) beside them, labelled
// with the kernel that runs (docs/precision.md; the goal: bf16 ≥ 1.5× sgemm where the CPU has bf16 units).
#include <benchmark/benchmark.h>
#include <cblas.h>

#include "partrain/kernels/gemm.hpp"
#include "partrain/core/rng.hpp"

using namespace partrain;

static void BM_KokkosBlasSgemm(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  View2<float> A("A", n, n), B("B", n, n), C("C", n, n);
  fill_normal(View1<float>(A.data(), n * n), CounterRng(1, "A"), 0, 1);
  fill_normal(View1<float>(B.data(), n * n), CounterRng(1, "B"), 0, 1);
  for (auto _ : state) {
    kernels::gemm('N', 'T', 1.0f, A, B, 0.0f, C);
    Kokkos::fence();
    benchmark::DoNotOptimize(C.data());
  }
  state.SetItemsProcessed(state.iterations() * std::int64_t(kernels::gemm_flops(n, n, n)));
}

static void BM_CblasSgemm(benchmark::State& state) {
  const int n = int(state.range(0));
  std::vector<float> A(size_t(n) * n), B(size_t(n) * n), C(size_t(n) * n);
  const CounterRng ra(1, "A"), rb(1, "B");
  for (size_t i = 0; i < A.size(); ++i) {
    A[i] = float(ra.normal(i));
    B[i] = float(rb.normal(i));
  }
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, A.data(), n, B.data(), n, 0.0f, C.data(), n);
    benchmark::DoNotOptimize(C.data());
  }
  state.SetItemsProcessed(state.iterations() * std::int64_t(kernels::gemm_flops(n, n, n)));
}

template <class H>
static void BM_HalfGemm(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  View2<H> A("A", n, n), B("B", n, n), C("C", n, n);
  fill_normal(View1<H>(A.data(), n * n), CounterRng(1, "A"), 0, 1);
  fill_normal(View1<H>(B.data(), n * n), CounterRng(1, "B"), 0, 1);
  for (auto _ : state) {
    kernels::gemm<H>('N', 'T', 1.0f, A, B, 0.0f, C);
    Kokkos::fence();
    benchmark::DoNotOptimize(C.data());
  }
  state.SetItemsProcessed(state.iterations() * std::int64_t(kernels::gemm_flops(n, n, n)));
  state.SetLabel(kernels::half_gemm_kernel(precision_name<H>()));
}

BENCHMARK(BM_HalfGemm<bf16>)->Name("BM_Bf16Gemm")->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HalfGemm<fp16>)->Name("BM_Fp16Gemm")->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_KokkosBlasSgemm)->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CblasSgemm)->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond);
