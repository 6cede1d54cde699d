// Expert parallelism matches the single-process reference on the same global batch: the mixture-of-experts GPT
// (both blocks MoE, top-2, a capacity that drops choices) at every expert-parallel degree that divides this run's
// rank count and the experts (np 4: ep 1, 2 — expert and data parallelism together — and 4): the loss and every
// gradient tensor, the experts' gathered from their ranks, after one step, and the loss over 20 steps.
#include <gtest/gtest.h>

#include "equivalence_util.hpp"
#include "partrain/parallel/ep/ep_trainer.hpp"

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

void check(const models::ModelSpec& ms, int degree, coll::Algo a2a) {
  const auto ts = small_train(20);
  const auto& ref = reference_in<float>(ms, ts);
  auto& world = world_comm();
  const int r = world.rank();
  auto ep = world.split(r / degree, r), edp = world.split(r % degree, r);
  auto gpt = ms.gpt;
  gpt.expert_first = std::int64_t(ep->rank()) * (gpt.moe.experts / degree);
  gpt.expert_count = gpt.moe.experts / degree;
  models::Gpt<float> model(gpt);
  model.build(ms.seed);
  auto d = models::make_dataset<float>(ms);
  parallel::EpOptions o;
  o.a2a_algo = a2a;
  o.dp.bucket_mib = 0.002;  // several buckets, an MoE block's shared and expert runs in one of them
  parallel::EpTrainer<float> tr(model, *d, ts, world, *ep, *edp, o, ms.seed);
  const std::string what = "np " + std::to_string(world.size()) + " ep " + std::to_string(degree) + " k " +
                           std::to_string(ms.gpt.moe.top_k) + " " + coll::name(a2a);
  std::vector<io::NamedTensor> grads;
  std::vector<double> loss;
  for (std::int64_t s = 0; s < ts.steps; ++s) {
    auto rec = tr.step(s, [&](double) {
      if (s == 0) grads = tr.gather_full(true);
    });
    loss.push_back(rec.loss);
  }
  EXPECT_LE(rel(loss[0], ref.loss[0]), kLossTol) << what;
  ASSERT_EQ(grads.size(), ref.grads_by_name.size()) << what;
  for (const auto& g : grads) {
    ASSERT_TRUE(ref.grads_by_name.count(g.name)) << what << ": " << g.name;
    EXPECT_EQ(g.shape, ref.shapes.at(g.name)) << what << ": " << g.name;
    EXPECT_LE(tensor_rel_err(g.values, ref.grads_by_name.at(g.name)), kGradTol) << what << ": " << g.name;
  }
  for (std::size_t s = 0; s < loss.size(); ++s) EXPECT_LE(rel(loss[s], ref.loss[s]), kTrajectoryTol) << what << " step " << s;
  // choices were dropped, and the counts add up: kept rows + dropped = every choice of every MoE block
  for (const auto& x : tr.datasets()) {
    if (x.path == "/moe/dropped" && ms.gpt.moe.capacity_factor < 1)
      EXPECT_GT(x.values[0], 0.0) << what << ": the capacity dropped nothing";
    if (x.path == "/moe/tokens_per_expert") {
      double kept = 0;
      for (std::size_t i = 0; i < x.values.size() / std::size_t(ts.steps); ++i) kept += x.values[i];  // step 0
      double dropped = 0;
      for (const auto& y : tr.datasets())
        if (y.path == "/moe/dropped") dropped = y.values[0];
      EXPECT_EQ(kept + dropped, double(ts.global_batch * 8 * ms.gpt.moe.top_k * 2)) << what;
    }
  }
  for (const auto& [name, ok] : tr.self_check()) EXPECT_TRUE(ok) << what << ": " << name;
}

std::vector<int> degrees() {
  std::vector<int> out;
  for (int d : {1, 2, 4})
    if (world_comm().size() % d == 0) out.push_back(d);
  return out;
}
}  // namespace

TEST(ExpertParallel, MoeGptMatchesReference) {
  for (int d : degrees())
    for (std::int64_t k : {1, 2}) check(small_moe(k), d, coll::Algo::Ring);
}

TEST(ExpertParallel, NoDropsAndAnExpertRankTakingMoreThanItsTokens) {
  for (int d : degrees()) check(small_moe(2, 4.0), d, coll::Algo::Ring);
}

TEST(ExpertParallel, VendorAlltoallMatchesReference) {
  for (int d : degrees())
    if (d > 1) check(small_moe(2), d, coll::Algo::Vendor);
}
