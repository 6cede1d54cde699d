// Time per training step, one rank, one thread, of the two reference models in their benchmark shapes:
//   GPT  L=4, C=256, H=4, T=128, V=512, B=8, AdamW
//   MLP  4×Linear(1024,1024) (widths 1024×5), batch 64, SGD
//   the GPT again in bf16 and fp16 (train.precision: 16-bit compute, fp32 master weights; docs/precision.md)
// The same models in PyTorch: benchmarks/peer/. The main() initialises MPI and Kokkos around Google Benchmark.
#include <benchmark/benchmark.h>

#include "partrain/core/runtime.hpp"
#include "partrain/models/trainer.hpp"

using namespace partrain;
using namespace partrain::models;

template <class T = float>
static void run_steps(benchmark::State& state, const ModelSpec& ms, const TrainSpec& ts) {
  auto model = make_model<T>(ms);
  auto data = make_dataset<T>(ms);
  ReferenceTrainer<T> tr(*model, *data, ts, ms.seed);
  for (int w = 0; w < 2; ++w) tr.step(w);  // warm-up
  std::int64_t s = 2;
  for (auto _ : state) {
    const auto rec = tr.step(s++);
    state.SetIterationTime(rec.time_s);  // compute only: data generation excluded, as in the peer scripts
  }
  state.SetItemsProcessed(state.iterations() * ts.global_batch * rows_per_sample(ms));
  state.counters["GFLOP/s"] = benchmark::Counter(3.0 * model->forward_flops(ts.global_batch) * 1e-9 *
                                                     double(state.iterations()),
                                                 benchmark::Counter::kIsRate);
}

/// The GPT's benchmark shape in precision T (fp32, or bf16/fp16: mixed precision).
template <class T = float>
static void BM_StepGpt(benchmark::State& state) {
  ModelSpec ms;
  ms.kind = "gpt";
  ms.gpt = GptConfig{512, 128, 4, 256, 4};
  TrainSpec ts;
  ts.global_batch = 8;
  ts.optimizer.kind = "adamw";
  ts.precision = precision_name<T>();
  run_steps<T>(state, ms, ts);
  if (is_half_v<T>) state.SetLabel(kernels::half_gemm_kernel(ts.precision));
}

static void BM_StepMlp(benchmark::State& state) {
  ModelSpec ms;
  ms.kind = "mlp";
  ms.mlp.widths = {1024, 1024, 1024, 1024, 1024};
  ms.mlp.activation = kernels::Activation::Relu;
  TrainSpec ts;
  ts.global_batch = 64;
  ts.optimizer.kind = "sgd";
  ts.optimizer.lr = 0.01;
  run_steps(state, ms, ts);
}

BENCHMARK(BM_StepGpt<float>)->Name("BM_StepGpt")->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_StepMlp)->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_StepGpt<bf16>)->Name("BM_StepGptBf16")->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_StepGpt<fp16>)->Name("BM_StepGptFp16")->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);

int main(int argc, char** argv) {
  Runtime rt(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
