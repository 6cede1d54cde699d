// Context parallelism (docs/cp.md) matches the single-process reference: every grid cp × t × d of the rank count with
// cp ∈ {2, 3, 4}, t ∈ {1, 2, 4}, ring and Ulysses attention (Ulysses where the heads divide), with and without
// sequence parallelism; after 1 step the loss and every gathered gradient tensor, over 5 steps the loss trajectory.
// Also: the bytes each layer's attention sends equal the formulas, and the zigzag layout gives every rank the same
// share of the causal triangle.
#include <gtest/gtest.h>

#include "equivalence_util.hpp"
#include "partrain/collectives/process_grid.hpp"
#include "partrain/parallel/dp/data_parallel.hpp"
#include "partrain/parallel/tp/gpt.hpp"

using namespace partrain;
using namespace partrain::test;

namespace {
models::ModelSpec cp_gpt() {
  models::ModelSpec s;
  s.kind = "gpt";
  s.gpt = models::GptConfig{32, 24, 2, 16, 4};  // V, T, L, C, H: T splits into 2·cp chunks for cp = 2, 3, 4
  return s;
}

/// A GPT over a cp × t × d grid in T, built, with its dataset and trainer.
struct CpRun {
  coll::ProcessGrid& pg;
  parallel::CpContext cp;
  parallel::TpContext tp;
  parallel::TpGpt<float> model;
  std::unique_ptr<models::Dataset<float>> data;
  std::unique_ptr<parallel::DataParallelTrainer<float>> trainer;
  CpRun(const models::ModelSpec& ms, const models::TrainSpec& ts, int world, int c, int t, parallel::CpKind kind, bool sp)
      : pg(grid_of(GridShape{1, world / (t * c), t, c})),
        cp(context(pg, ms, kind)),
        tp{&pg.tp(), coll::Algo::Ring, sp, &cp},
        model(ms.gpt, tp),
        data(models::make_dataset<float>(ms)) {
    model.build(ms.seed);
    parallel::DpOptions o;
    o.bucket_mib = 0.002;
    trainer = std::make_unique<parallel::DataParallelTrainer<float>>(model, *data, ts, pg.dp_cp(), o, &tp, ms.seed);
  }
  static parallel::CpContext context(coll::ProcessGrid& pg, const models::ModelSpec& ms, parallel::CpKind kind) {
    parallel::CpContext c;
    c.comm = &pg.cp();
    c.kind = kind;
    c.layout = parallel::CpLayout(ms.gpt.seq_len, pg.cp().size(), pg.cp().rank(), kind == parallel::CpKind::Ring);
    return c;
  }
};

void check(int c, int t, parallel::CpKind kind, bool sp) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  const auto ms = cp_gpt();
  const auto ts = small_train(5);
  const auto& ref = reference_in<float>(ms, ts);
  CpRun run(ms, ts, world, c, t, kind, sp);
  const std::string what = std::string(parallel::name(kind)) + " cp=" + std::to_string(c) + " t=" + std::to_string(t) +
                           " d=" + std::to_string(world / (t * c)) + (sp ? " sp" : "");
  std::vector<double> loss;
  for (std::int64_t s = 0; s < ts.steps; ++s) {
    auto r = run.trainer->step(s, [&](double) {
      if (s != 0) return;
      for (const auto& g : run.trainer->gather_full(true)) {
        ASSERT_TRUE(ref.grads_by_name.count(g.name)) << g.name;
        EXPECT_EQ(g.shape, ref.shapes.at(g.name)) << what << " " << g.name;
        EXPECT_LE(tensor_rel_err(g.values, ref.grads_by_name.at(g.name)), kGradTol) << what << " " << g.name;
      }
    });
    loss.push_back(r.loss);
  }
  EXPECT_LE(rel(loss[0], ref.loss[0]), kLossTol) << what;
  for (std::size_t s = 0; s < loss.size(); ++s) EXPECT_LE(rel(loss[s], ref.loss[s]), kTrajectoryTol) << what << " step " << s;
  const auto verdicts = run.trainer->self_check();
  for (const auto& [name, ok] : verdicts) EXPECT_TRUE(ok) << what << " " << name;
}
}  // namespace

TEST(ContextParallel, MatchesReferenceOnEveryGrid) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (world == 1) GTEST_SKIP() << "context parallelism needs 2 ranks or more";
  const int heads = cp_gpt().gpt.heads;
  for (int c : {2, 3, 4})
    for (int t : {1, 2, 4}) {
      if (world % (c * t) != 0) continue;
      for (auto kind : {parallel::CpKind::Ring, parallel::CpKind::Ulysses}) {
        if (kind == parallel::CpKind::Ulysses && (heads / t) % c != 0) continue;
        check(c, t, kind, false);
        if (t > 1) check(c, t, kind, true);
      }
    }
}

TEST(ContextParallel, AttentionSendsTheFormulasBytes) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (world == 1) GTEST_SKIP() << "context parallelism needs 2 ranks or more";
  const auto ms = cp_gpt();
  auto ts = small_train(1);
  ts.global_batch = 2;
  for (auto kind : {parallel::CpKind::Ring, parallel::CpKind::Ulysses}) {
    if (kind == parallel::CpKind::Ulysses && ms.gpt.heads % world != 0) continue;
    if (kind == parallel::CpKind::Ring && ms.gpt.seq_len % (2 * world) != 0) continue;
    CpRun run(ms, ts, world, world, 1, kind, false);
    run.trainer->step(0);
    const double per_layer = double(run.cp.bytes_sent) / ms.gpt.layers;
    EXPECT_EQ(per_layer, parallel::cp_bytes_per_layer(kind, world, 2, double(ms.gpt.seq_len / world), ms.gpt.channels, 4))
        << parallel::name(kind);
    EXPECT_EQ(run.cp.calls, 2 * ms.gpt.layers) << parallel::name(kind);  // one forward and one backward per block
  }
}

TEST(ContextParallel, ZigzagGivesEveryRankTheSameCausalWork) {
  for (int cp : {1, 2, 3, 4, 8}) {
    const std::int64_t T = 48;
    std::vector<int> owner(T, -1);
    std::vector<std::int64_t> pairs(cp, 0);
    for (int r = 0; r < cp; ++r) {
      const parallel::CpLayout lay(T, cp, r, true);
      for (std::int64_t j = 0; j < lay.local; ++j) {
        const auto t = lay.position(j);
        ASSERT_EQ(owner[t], -1) << "cp=" << cp << " position " << t << " held twice";
        owner[t] = r;
        EXPECT_EQ(lay.local_index(t), j);
        pairs[r] += t + 1;  // keys visible to the query at position t
      }
      for (std::int64_t t = 0; t < T; ++t)
        if (lay.local_index(t) >= 0) {
          EXPECT_EQ(lay.position(lay.local_index(t)), t);
        }
    }
    for (std::int64_t t = 0; t < T; ++t) EXPECT_GE(owner[t], 0) << "cp=" << cp << " position " << t << " held by none";
    for (int r = 1; r < cp; ++r) EXPECT_EQ(pairs[r], pairs[0]) << "cp=" << cp << " rank " << r;
    const parallel::CpLayout contiguous(T, cp, cp - 1, false);  // Ulysses': the last rank holds the last tokens
    EXPECT_EQ(contiguous.position(0), T - T / cp);
  }
}
