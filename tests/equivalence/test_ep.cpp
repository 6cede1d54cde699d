// Expert parallelism matches the single-process reference on the same global batch: the mixture-of-experts GPT
// (both blocks MoE, top-2, a capacity that drops choices) at every expert-parallel degree that divides this run's
// rank count and the experts (np 4: ep 1, 2 — expert and data parallelism together — and 4): the loss and every
// gradient tensor, the experts' gathered from their ranks, after one step, and the losses of 3 steps (20 at the
// widest expert parallelism). And expert
// parallelism inside pipeline stages (partrain-pp): np 4 as pp 2 × dp 2 with ep 2 (1F1B, interleaved, recomputation),
// np 2 as ep 2 with one stage and as pp 2 with the experts whole; the same checks.
#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "equivalence_util.hpp"
#include "partrain/parallel/dp/data_parallel.hpp"
#include "partrain/parallel/pipeline/pipeline_trainer.hpp"

using namespace partrain;
using namespace partrain::test;

namespace {
models::ModelSpec small_moe(std::int64_t k, double capacity_factor = 0.75) {
  auto s = small_gpt();  // T = 8, L = 2, C = 16
  s.gpt.moe.every = 1;
  s.gpt.moe.experts = 4;
  s.gpt.moe.top_k = k;
  // 0.75: cap = ⌈0.75·k·8/4⌉, at most 3k·4 of a sequence's 8k choices are kept; 4: cap = 8k, nothing is dropped
  // and an expert rank may receive more rows than its own tokens make (every token of the group to one expert)
  s.gpt.moe.capacity_factor = capacity_factor;
  s.gpt.moe.aux_loss_coef = 0.05;
  return s;
}

/// `steps`: 20 for the whole loss trajectory, 3 where one layout has checked it (every rank computes the reference of
/// as many steps, once per binary).
/// The expert groups of `degree` consecutive ranks of `comm`, made once per communicator and degree for the binary
/// (a split is a blocking collective, slow when ranks outnumber cores; never freed, like grid_of's).
parallel::EpGroups groups_of(coll::MpiCommunicator& comm, int degree, coll::Algo algo) {
  static auto& cache = *new std::map<std::pair<coll::MpiCommunicator*, int>, std::unique_ptr<parallel::ExpertGroups>>;
  auto& g = cache[{&comm, degree}];
  if (!g) g = std::make_unique<parallel::ExpertGroups>(comm, degree, coll::Algo::Auto);
  auto out = g->groups();
  out.algo = algo;
  return out;
}

/// Trains `steps` steps; the gradients gathered after the first backward and every loss against the reference: the
/// loss within 1e-5, every tensor (names and shapes the reference's) within 1e-4, the trajectory within 1e-4, and
/// the trainer's self-check.
template <class Trainer>
void expect_reference(Trainer& tr, const Trajectory& ref, std::int64_t steps, const std::string& what) {
  std::vector<io::NamedTensor> grads;
  std::vector<double> loss;
  for (std::int64_t s = 0; s < steps; ++s) {
    auto rec = tr.step(s, [&](double) {
      if (s == 0) grads = tr.gather_full(true);
    });
    loss.push_back(rec.loss);
  }
  EXPECT_LE(rel(loss[0], ref.loss[0]), kLossTol) << what;
  for (std::size_t s = 0; s < loss.size(); ++s) EXPECT_LE(rel(loss[s], ref.loss[s]), kTrajectoryTol) << what << " step " << s;
  if (world_comm().rank() == 0) {  // a pipeline's gathered tensors are on its first rank
    ASSERT_EQ(grads.size(), ref.grads_by_name.size()) << what;
    for (const auto& g : grads) {
      ASSERT_TRUE(ref.grads_by_name.count(g.name)) << what << ": " << g.name;
      EXPECT_EQ(g.shape, ref.shapes.at(g.name)) << what << ": " << g.name;
      EXPECT_LE(tensor_rel_err(g.values, ref.grads_by_name.at(g.name)), kGradTol) << what << ": " << g.name;
    }
  }
  for (const auto& [name, ok] : tr.self_check()) EXPECT_TRUE(ok) << what << ": " << name;
}

void check(const models::ModelSpec& ms, int degree, coll::Algo a2a, std::int64_t steps = 3) {
  const auto ts = small_train(steps);
  const auto& ref = reference_in<float>(ms, ts);
  auto& world = world_comm();
  const auto groups = groups_of(world, degree, a2a);
  auto gpt = ms.gpt;
  gpt.expert_first = std::int64_t(groups.ep->rank()) * (gpt.moe.experts / degree);
  gpt.expert_count = gpt.moe.experts / degree;
  models::Gpt<float> model(gpt);
  model.build(ms.seed);
  auto d = models::make_dataset<float>(ms);
  parallel::DpOptions o;
  o.bucket_mib = 0.002;  // several buckets, an MoE block's shared and expert runs in one of them
  parallel::DataParallelTrainer<float> tr(model, *d, ts, world, o, nullptr, ms.seed, &groups);
  const std::string what = "np " + std::to_string(world.size()) + " ep " + std::to_string(degree) + " k " +
                           std::to_string(ms.gpt.moe.top_k) + " " + coll::name(a2a);
  expect_reference(tr, ref, ts.steps, what);
  // choices were dropped, and the counts add up: kept rows + dropped = every choice of every MoE block
  for (const auto& x : tr.datasets()) {
    if (x.path == "/moe/dropped" && ms.gpt.moe.capacity_factor < 1) {
      EXPECT_GT(x.values[0], 0.0) << what << ": the capacity dropped nothing";
    }
    if (x.path == "/moe/tokens_per_expert") {
      double kept = 0;
      for (std::size_t i = 0; i < x.values.size() / std::size_t(ts.steps); ++i) kept += x.values[i];  // step 0
      double dropped = 0;
      for (const auto& y : tr.datasets())
        if (y.path == "/moe/dropped") dropped = y.values[0];
      EXPECT_EQ(kept + dropped, double(ts.global_batch * 8 * ms.gpt.moe.top_k * 2)) << what;
    }
  }
}

struct PipeLayout {
  int p = 1, ep = 1, m = 2, v = 1;
  parallel::pipeline::ScheduleKind kind = parallel::pipeline::ScheduleKind::OneFOneB;
  bool recompute = false;
  std::int64_t steps = 3;
};

void check_pipeline(const PipeLayout& l) {
  namespace pl = parallel::pipeline;
  auto ms = small_moe(2);
  ms.gpt.layers = 4;  // 4 blocks: 2 stages × 2 chunks
  auto ts = small_train(l.steps);
  ts.global_batch = 24;  // d·m divides it at every layout below
  const auto& ref = reference_in<float>(ms, ts);
  auto& world = world_comm();
  const int d = world.size() / l.p;
  coll::ProcessGrid& grid = grid_of(GridShape{l.p, d, 1});
  const auto groups = groups_of(grid.dp(), l.ep, coll::Algo::Auto);
  auto gpt = ms.gpt;
  if (l.ep > 1) {
    gpt.expert_count = gpt.moe.experts / l.ep;
    gpt.expert_first = std::int64_t(groups.ep->rank()) * gpt.expert_count;
  }
  auto make = [&]() -> std::unique_ptr<models::Model<float>> { return std::make_unique<models::Gpt<float>>(gpt); };
  auto data = models::make_dataset<float>(ms);
  pl::PipelineOptions o;
  o.schedule = {l.kind, l.p, l.m, l.v};
  o.recompute = l.recompute;
  o.dp.bucket_mib = 0.002;
  pl::PipelineTrainer<float> tr(make, ms.seed, *data, ts, grid, nullptr, o, l.ep > 1 ? &groups : nullptr);
  const std::string what = "pp " + std::to_string(l.p) + " x dp " + std::to_string(d) + " ep " + std::to_string(l.ep) +
                           " " + pl::name(l.kind) + " v " + std::to_string(l.v) + (l.recompute ? " recompute" : "");
  expect_reference(tr, ref, ts.steps, what);
}

std::vector<int> degrees() {
  std::vector<int> out;
  for (int d : {1, 2, 4})
    if (world_comm().size() % d == 0) out.push_back(d);
  return out;
}
}  // namespace

TEST(ExpertParallel, MoeGptMatchesReference) {
  const auto ds = degrees();
  for (int d : ds)  // the trajectory over 20 steps at the widest expert parallelism
    for (std::int64_t k : {1, 2}) check(small_moe(k), d, coll::Algo::Ring, d == ds.back() && k == 2 ? 20 : 3);
}

TEST(ExpertParallel, NoDropsAndAnExpertRankTakingMoreThanItsTokens) {
  for (int d : degrees()) check(small_moe(2, 4.0), d, coll::Algo::Ring);
}

TEST(ExpertParallel, VendorAlltoallMatchesReference) {
  const auto ds = degrees();
  for (int d : ds)
    if (d > 1) check(small_moe(2), d, coll::Algo::Vendor, d == ds.back() ? 20 : 3);  // the same reference as above
}

TEST(ExpertParallel, InsidePipelineStagesMatchesReference) {
  namespace pl = parallel::pipeline;
  const int n = world_comm().size();
  if (n == 4) {
    check_pipeline({2, 2, 2, 1, pl::ScheduleKind::OneFOneB, false});
    check_pipeline({2, 2, 2, 2, pl::ScheduleKind::Interleaved, false});
    check_pipeline({2, 2, 4, 1, pl::ScheduleKind::GPipe, true});
  } else if (n == 2) {
    check_pipeline({1, 2, 2, 1, pl::ScheduleKind::OneFOneB, false});
    check_pipeline({2, 1, 2, 1, pl::ScheduleKind::OneFOneB, false});
  } else {
    check_pipeline({1, 1, 2, 1, pl::ScheduleKind::OneFOneB, false});
  }
}
