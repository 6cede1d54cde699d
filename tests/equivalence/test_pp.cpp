// Pipeline parallelism matches the single-process reference on the same global batch: every schedule, p ∈ {1, 2, 4}
// (where p divides the rank count; the rest of the ranks are data-parallel replicas), m ∈ {1, p, 4p} where the
// schedule allows, GPT and MLP, with recomputation at m = 4p; at 4 ranks also p2 × t2 (tensor parallelism inside
// the stages). After the first step: the loss, the global gradient norm and every gathered gradient tensor (the
// reference's names and shapes, the tied wte's two copies summed); the loss of the second step (the update applied);
// over 20 steps, once per schedule and depth (m = 4p, no recomputation): the loss trajectory.
#include <gtest/gtest.h>

#include <map>

#include "equivalence_util.hpp"
#include "partrain/parallel/pipeline/pipeline_trainer.hpp"
#include "partrain/parallel/tp/gpt.hpp"

using namespace partrain;
using namespace partrain::test;
namespace pl = partrain::parallel::pipeline;

namespace {
models::ModelSpec pp_gpt() {
  models::ModelSpec s;
  s.kind = "gpt";
  s.gpt = models::GptConfig{32, 8, 8, 16, 2};  // V, T, L = 8 blocks (4 stages × 2 chunks), C, H
  return s;
}

models::ModelSpec pp_mlp() {
  models::ModelSpec s;
  s.kind = "mlp";
  s.mlp.widths = {12, 16, 16, 16, 16, 16, 16, 16, 6};  // 8 linear layers
  return s;
}

models::TrainSpec pp_train(std::int64_t steps) {
  auto t = small_train(steps);
  t.global_batch = 48;  // divisible by d·m for every layout below at 1–4 ranks
  return t;
}

const Trajectory& reference(const models::ModelSpec& ms) {
  static std::map<std::string, Trajectory> cache;
  auto it = cache.find(ms.kind);
  if (it == cache.end()) it = cache.emplace(ms.kind, reference_run(ms, pp_train(20))).first;
  return it->second;
}

/// Runs the trainer's steps; after the first step's backward, rank 0 checks the gathered gradients. The losses.
template <class Trainer, class Check>
std::vector<double> run_checking_grads(Trainer& tr, std::int64_t steps, int rank, const Check& check_grads) {
  std::vector<double> loss;
  for (std::int64_t s = 0; s < steps; ++s) {
    auto r = tr.step(s, [&](double) {
      if (s != 0) return;
      const auto grads = tr.gather_full(true);
      if (rank == 0) check_grads(grads);
    });
    loss.push_back(r.loss);
  }
  return loss;
}

struct Layout {
  int p = 1, t = 1;
  pl::ScheduleKind kind = pl::ScheduleKind::OneFOneB;
  int m = 1, v = 1;
  bool recompute = false, sp = false;
  std::string partition = "uniform";
  std::int64_t steps = 2;  ///< 20: the whole loss trajectory
};

void check(const models::ModelSpec& ms, const Layout& l) {
  int world = 1, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const int d = world / (l.p * l.t);
  const auto ts = pp_train(l.steps);
  const auto& ref = reference(ms);
  coll::ProcessGrid& grid = grid_of(GridShape{l.p, d, l.t});
  parallel::TpContext tp{&grid.tp(), coll::Algo::Ring, l.sp};
  auto make = [&]() -> std::unique_ptr<models::Model<float>> {
    if (l.t > 1) return std::make_unique<parallel::TpGpt<float>>(ms.gpt, tp);
    return ms.kind == "gpt" ? std::unique_ptr<models::Model<float>>(std::make_unique<models::Gpt<float>>(ms.gpt))
                            : std::make_unique<models::Mlp<float>>(ms.mlp);
  };
  auto data = models::make_dataset<float>(ms);
  pl::PipelineOptions o;
  o.schedule = {l.kind, l.p, l.m, l.v};
  o.recompute = l.recompute;
  o.partition = l.partition;
  if (l.partition == "explicit") o.partition_counts = {5, 3};  // 8 body layers over 2 stages, unevenly
  o.dp.bucket_mib = 0.002;
  pl::PipelineTrainer<float> tr(make, ms.seed, *data, ts, grid, l.t > 1 ? &tp : nullptr, o);
  const std::string what = ms.kind + " " + pl::name(l.kind) + " p=" + std::to_string(l.p) + " d=" + std::to_string(d) +
                           " t=" + std::to_string(l.t) + " m=" + std::to_string(l.m) + " v=" + std::to_string(l.v) +
                           (l.recompute ? " recompute" : "") + (l.sp ? " sp" : "") + " " + l.partition + " " +
                           std::to_string(l.steps) + " steps";
  const auto loss = run_checking_grads(tr, ts.steps, rank, [&](const std::vector<io::NamedTensor>& grads) {
    EXPECT_EQ(grads.size(), ref.grads_by_name.size()) << what;
    double num = 0, den = 0, gnorm = 0, rnorm = 0;
    for (const auto& g : grads) {
      ASSERT_TRUE(ref.grads_by_name.count(g.name)) << what << " " << g.name;
      EXPECT_EQ(g.shape, ref.shapes.at(g.name)) << what << " " << g.name;
      const auto& rg = ref.grads_by_name.at(g.name);
      ASSERT_EQ(g.values.size(), rg.size()) << what << " " << g.name;
      num = den = 0;
      for (std::size_t i = 0; i < rg.size(); ++i) {
        num += (g.values[i] - rg[i]) * (g.values[i] - rg[i]);
        den += rg[i] * rg[i];
        gnorm += g.values[i] * g.values[i];
      }
      rnorm += den;
      EXPECT_LE(std::sqrt(num) / std::max(std::sqrt(den), 1e-30), kGradTol) << what << " " << g.name;
    }
    EXPECT_LE(rel(std::sqrt(gnorm), std::sqrt(rnorm)), kGradTol) << what << ": gradient norm";
  });
  EXPECT_LE(rel(loss[0], ref.loss[0]), kLossTol) << what;
  for (std::size_t s = 0; s < loss.size(); ++s)
    EXPECT_LE(rel(loss[s], ref.loss[s]), kTrajectoryTol) << what << " step " << s;
  for (const auto& [name, ok] : tr.self_check()) EXPECT_TRUE(ok) << what << ": " << name;
}

/// Every schedule × m ∈ {1, p, 4p} for the pipeline depths that divide the rank count, with recomputation at m = 4p;
/// the 20-step trajectory once per schedule and depth, at m = p (m = 1 without a pipeline): the fewest microbatches
/// that fill the pipeline, so the longest run is not also the widest. One stage (p = 1: the schedules' data-parallel
/// degenerate case) runs at 1–3 ranks; at 4 the depths 2 and 4 (4 ranks on 2 cores are the suite's slowest).
void every_layout(const models::ModelSpec& ms) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  for (int p : {1, 2, 4}) {
    if (world % p != 0 || (p == 1 && world == 4)) continue;
    for (auto kind : {pl::ScheduleKind::GPipe, pl::ScheduleKind::OneFOneB, pl::ScheduleKind::Interleaved,
                      pl::ScheduleKind::ZeroBubble})
      for (int m : p == 1 ? std::vector<int>{1, 4} : std::vector<int>{1, p, 4 * p}) {
        const int v = kind == pl::ScheduleKind::Interleaved ? 2 : 1;
        if (!pl::why_not({kind, p, m, v}).empty()) continue;
        for (bool recompute : {false, true}) {
          if (recompute && m != 4 * p) continue;  // recomputation once per schedule and depth, at the most microbatches
          Layout l{p, 1, kind, m, v, recompute};
          if (m == (p == 1 ? 1 : p) && !recompute) l.steps = 20;
          check(ms, l);
        }
      }
  }
}
}  // namespace

TEST(PipelineParallel, GptMatchesReferenceForEverySchedule) { every_layout(pp_gpt()); }

TEST(PipelineParallel, MlpMatchesReferenceForEverySchedule) { every_layout(pp_mlp()); }

TEST(PipelineParallel, PartitionsByFlopsAndByList) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (world % 2 != 0) GTEST_SKIP() << "two stages";
  check(pp_gpt(), Layout{2, 1, pl::ScheduleKind::OneFOneB, 4, 1, false, false, "flops"});
  check(pp_mlp(), Layout{2, 1, pl::ScheduleKind::OneFOneB, 4, 1, false, false, "flops"});
  check(pp_gpt(), Layout{2, 1, pl::ScheduleKind::ZeroBubble, 4, 1, false, false, "explicit"});
  check(pp_mlp(), Layout{2, 1, pl::ScheduleKind::GPipe, 4, 1, true, false, "explicit"});
}

TEST(PipelineParallel, TensorParallelStagesAtFourRanks) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (world != 4) GTEST_SKIP() << "p2 x t2 needs 4 ranks";
  for (auto kind : {pl::ScheduleKind::GPipe, pl::ScheduleKind::OneFOneB, pl::ScheduleKind::Interleaved})
    for (int m : {2, 8})
      for (bool recompute : {false, true}) {
        if (recompute && m != 8) continue;
        Layout l{2, 2, kind, m, kind == pl::ScheduleKind::Interleaved ? 2 : 1, recompute};
        if (m == 2) l.steps = 20;  // the trajectory at the fewest microbatches
        check(pp_gpt(), l);
      }
  Layout sp{2, 2, pl::ScheduleKind::OneFOneB, 4, 1, false, true};  // sequence parallel
  sp.steps = 20;
  check(pp_gpt(), sp);
}

namespace {
// Mixed precision: the pipeline in bf16 and fp16 against the reference in the same precision: every gathered
// gradient tensor after one step (the master weights' gradients: divided by the loss scale) and the loss over 5
// steps within 2·sqrt(n)·u (docs/precision.md), n the GPT's longest chain of roundings; the replicas and the tied
// copies identical (the 16-bit weights are refreshed from master weights updated alike).
template <class H>
void check_mixed(const Layout& l, bool reduce_fp32) {
  int world = 1, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const int d = world / (l.p * l.t);
  const auto ms = pp_gpt();
  auto ts = pp_train(5);
  ts.precision = precision_name<H>();
  const auto& ref = reference_in<H>(ms, ts);
  coll::ProcessGrid& grid = grid_of(GridShape{l.p, d, l.t});
  parallel::TpContext tp{&grid.tp(), coll::Algo::Ring, l.sp};
  auto make = [&]() -> std::unique_ptr<models::Model<H>> {
    if (l.t > 1) return std::make_unique<parallel::TpGpt<H>>(ms.gpt, tp);
    return std::make_unique<models::Gpt<H>>(ms.gpt);
  };
  auto data = models::make_dataset<H>(ms);
  pl::PipelineOptions o;
  o.schedule = {l.kind, l.p, l.m, l.v};
  o.recompute = l.recompute;
  o.dp.bucket_mib = 0.002;
  o.dp.reduce_fp32 = reduce_fp32;
  pl::PipelineTrainer<H> tr(make, ms.seed, *data, ts, grid, l.t > 1 ? &tp : nullptr, o);
  const std::string what = precision_name<H>() + " " + pl::name(l.kind) + " p=" + std::to_string(l.p) +
                           " d=" + std::to_string(d) + " t=" + std::to_string(l.t) + " m=" + std::to_string(l.m) +
                           " v=" + std::to_string(l.v) + (l.recompute ? " recompute" : "") +
                           (reduce_fp32 ? " fp32 reduction" : "");
  const double tol = 2 * std::sqrt(6.0 + 22 * ms.gpt.layers) * unit_roundoff<H>();
  const auto loss = run_checking_grads(tr, ts.steps, rank, [&](const std::vector<io::NamedTensor>& grads) {
    EXPECT_EQ(grads.size(), ref.grads_by_name.size()) << what;
    for (const auto& g : grads)
    EXPECT_LE(tensor_rel_err(g.values, ref.grads_by_name.at(g.name)), tol) << what << " " << g.name;
  });
  for (std::size_t s = 0; s < loss.size(); ++s) EXPECT_LE(rel(loss[s], ref.loss[s]), tol) << what << " step " << s;
  for (const auto& [name, ok] : tr.self_check()) EXPECT_TRUE(ok) << what << ": " << name;
}
}  // namespace

TEST(PipelineParallel, MixedPrecisionMatchesTheReferenceInItsPrecision) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  const int p = world % 2 == 0 ? 2 : 1;  // the rest of the ranks are data-parallel replicas
  using K = pl::ScheduleKind;
  check_mixed<bf16>(Layout{p, 1, K::OneFOneB, 2 * p, 1}, world / p > 1);
  check_mixed<fp16>(Layout{p, 1, K::ZeroBubble, 2 * p, 1, true}, false);  // split backward, recomputed
  if (p == 2) check_mixed<bf16>(Layout{p, 1, K::Interleaved, 2 * p, 2}, world / p > 1);
  if (world == 4)  // tensor-parallel stages, sequence parallel, gradients reduced in fp32
    check_mixed<bf16>(Layout{2, 2, K::OneFOneB, 4, 1, false, true}, true);
}
