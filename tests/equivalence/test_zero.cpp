// ZeRO matches the single-process reference and its own stage 0: every stage 0–3 × offload (none, host, file), GPT
// and MLP, at whatever rank count this runs (np 1–4; 3 gives blocks of unequal size). After the first step the loss
// and every gathered gradient tensor (the reference's names and shapes), over 20 steps the loss trajectory; and the
// final parameters bit for bit against stage 0 where the reduction order is the same — every case but the GPT's tied
// wte at stages 2 and 3, whose two gradient contributions (head and embedding) are reduce-scattered separately and
// added after the reduction instead of before it, and every stage > 0 across nodes, where stage 0's allreduce is hier.
#include <gtest/gtest.h>

#include <map>

#include "equivalence_util.hpp"
#include "partrain/parallel/zero/zero_trainer.hpp"

using namespace partrain;
using namespace partrain::test;
namespace pz = partrain::parallel::zero;

namespace {
struct Run {
  std::vector<double> loss;
  std::vector<io::NamedTensor> first_grads, final_params;
};

/// T: float, or a 16-bit type (mixed precision; ts.precision names it).
template <class T = float>
Run run(const models::ModelSpec& ms, int stage, const std::string& offload, const models::TrainSpec& ts = small_train(20)) {
  auto& comm = world_comm();
  std::unique_ptr<models::Model<T>> model;
  if (ms.kind == "gpt") model = std::make_unique<models::Gpt<T>>(ms.gpt);
  else model = std::make_unique<models::Mlp<T>>(ms.mlp);
  auto data = models::make_dataset<T>(ms);
  pz::ZeroOptions o;
  o.stage = stage;
  o.offload = offload;
  o.offload_dir = ".";
  o.offload_buffer_mib = 0.001;             // chunks of ~64 elements: many chunks, reads overlapping updates
  o.bucket_mib = 0.002 * sizeof(T) / 4.0;  // ~500 elements: several buckets
  pz::ZeroTrainer<T> tr(*model, ms.seed, *data, ts, comm, o);
  Run r;
  for (std::int64_t s = 0; s < ts.steps; ++s) {
    auto rec = tr.step(s, [&](double) {
      if (s == 0) r.first_grads = tr.gather_full(true);
    });
    r.loss.push_back(rec.loss);
  }
  r.final_params = tr.gather_full(false);
  for (const auto& [what, ok] : tr.self_check()) EXPECT_TRUE(ok) << what;
  return r;
}

void check(const models::ModelSpec& ms) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  const auto ref = reference_run(ms, small_train(20));
  const Run base = run(ms, 0, "none");
  for (int stage = 0; stage <= 3; ++stage)
    for (const char* offload : {"none", "host", "file"}) {
      const std::string what = ms.kind + " stage " + std::to_string(stage) + " offload " + offload + " np " +
                               std::to_string(world);
      const Run r = run(ms, stage, offload);
      ASSERT_EQ(r.first_grads.size(), ref.grads_by_name.size()) << what;
      for (const auto& g : r.first_grads) {
        ASSERT_TRUE(ref.grads_by_name.count(g.name)) << what << " " << g.name;
        EXPECT_EQ(g.shape, ref.shapes.at(g.name)) << what << " " << g.name;
        const auto& rg = ref.grads_by_name.at(g.name);
        double num = 0, den = 0;
        for (std::size_t i = 0; i < rg.size(); ++i) {
          num += (g.values[i] - rg[i]) * (g.values[i] - rg[i]);
          den += rg[i] * rg[i];
        }
        EXPECT_LE(std::sqrt(num) / std::max(std::sqrt(den), 1e-30), kGradTol) << what << " " << g.name;
      }
      EXPECT_LE(rel(r.loss[0], ref.loss[0]), kLossTol) << what;
      for (std::size_t s = 0; s < r.loss.size(); ++s)
        EXPECT_LE(rel(r.loss[s], ref.loss[s]), kTrajectoryTol) << what << " step " << s;
      // Across nodes, auto's allreduce (stage 0) is hier — node sums first — while the reduce-scatter of stages 1–3
      // is a flat ring: another summation order, equal within rounding only (seen on the virtual cluster, 2 × 2).
      coll::MpiCommunicator& world = world_comm();
      const bool hier = stage > 0 && world.resolve(coll::Op::Allreduce, coll::Algo::Auto, 1 << 20) == coll::Algo::Hier;
      const bool same_order = !(ms.kind == "gpt" && stage >= 2) && !hier;
      ASSERT_EQ(r.final_params.size(), base.final_params.size()) << what;
      for (std::size_t k = 0; k < r.final_params.size(); ++k) {
        const auto& a = r.final_params[k];
        const auto& b = base.final_params[k];
        EXPECT_EQ(a.name, b.name) << what;
        if (same_order) {
          EXPECT_EQ(a.values, b.values) << what << ": " << a.name << " differs from stage 0 bit for bit";
        } else {
          double num = 0, den = 0;
          for (std::size_t i = 0; i < a.values.size(); ++i) {
            num += (a.values[i] - b.values[i]) * (a.values[i] - b.values[i]);
            den += b.values[i] * b.values[i];
          }
          // 20 AdamW steps amplify the different rounding of wte's gradient (~1e-7) to ~2e-4 in the parameters
          EXPECT_LE(std::sqrt(num) / std::max(std::sqrt(den), 1e-30), 1e-3) << what << ": " << a.name;
        }
      }
    }
}
}  // namespace

TEST(Zero, GptEveryStageAndOffload) { check(small_gpt()); }

TEST(Zero, MlpEveryStageAndOffload) { check(small_mlp()); }

TEST(Zero, UnevenSharesMatchReference) {
  // B/n or B/n + 1 samples per rank: 13 sequences at every rank count (64 at 3 ranks), every stage
  const int n = world_comm().size();
  for (std::int64_t b : {13, 64}) {
    if (b == 64 && n != 3) continue;
    auto ts = small_train(3);
    ts.global_batch = b;
    const auto ms = small_gpt();
    const auto& ref = reference_in<float>(ms, ts);
    for (int stage : {1, 3}) {
      const std::string what = "stage " + std::to_string(stage) + " batch " + std::to_string(b) + " np " + std::to_string(n);
      const auto r = run(ms, stage, "none", ts);
      for (std::size_t s = 0; s < r.loss.size(); ++s) EXPECT_LE(rel(r.loss[s], ref.loss[s]), kTrajectoryTol) << what << " step " << s;
      for (const auto& g : r.first_grads)
        EXPECT_LE(tensor_rel_err(g.values, ref.grads_by_name.at(g.name)), kGradTol) << what << " " << g.name;
    }
  }
}

TEST(Zero, ShardsAreBlocksOfEveryUnit) {
  int world = 1, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::vector<pz::TensorRange> ts = {{"a", 0, 10, false}, {"b", 10, 7, true}, {"c", 17, 5, false}, {"d", 22, 3, false}};
  const auto buckets = pz::tensor_buckets(ts, 6);
  ASSERT_EQ(buckets.size(), 3u);  // [a] [b] (tied, alone) [c d]
  EXPECT_EQ(buckets[0].begin, 0);
  EXPECT_TRUE(buckets[1].tied);
  EXPECT_EQ(buckets[2].end, 25);
  const pz::ShardLayout layout(buckets, world, rank);
  std::int64_t total = 0, shard = 0;
  for (std::size_t u = 0; u < buckets.size(); ++u) {
    shard += layout.block_size(u);
    EXPECT_EQ(layout.unit_at_shard(layout.shard_offset(u)), layout.block_size(u) ? u : layout.unit_at_shard(layout.shard_offset(u)));
  }
  EXPECT_EQ(shard, layout.shard_size());
  coll::allreduce(&shard, &total, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(total, 25);  // every element in exactly one rank's shard
  EXPECT_EQ(layout.unit_of(16), 1u);
  EXPECT_EQ(layout.unit_of(17), 2u);
}

// Mixed precision: stages 1–3 between the cases (and the host and file offloads), bf16 and fp16, against the reference in the
// same precision — per gathered gradient tensor after one step and the loss over 5 steps within
// 2·sqrt(n)·u (docs/precision.md), and the final fp32 master weights of every stage bit for bit against stage 0's
// where the reduction order is the same (the MLP; the GPT's tied wte is summed after its reduce-scatters at stages
// 2 and 3, within rounding).
namespace {
template <class H>
void check_mixed(const models::ModelSpec& ms, const std::vector<std::pair<int, std::string>>& cases) {
  auto ts = small_train(5);
  ts.precision = precision_name<H>();
  const auto ref = reference_run<H>(ms, ts);
  const double n = ms.kind == "gpt" ? 6 + 22 * ms.gpt.layers : 1 + 4 * double(ms.mlp.widths.size() - 1);
  const double tol = 2 * std::sqrt(n) * unit_roundoff<H>();
  const Run base = run<H>(ms, 0, "none", ts);
  for (const auto& [stage, offload] : cases) {
    const std::string what = precision_name<H>() + " " + ms.kind + " stage " + std::to_string(stage) + " offload " +
                             offload + " np " + std::to_string(world_comm().size());
    const Run r = run<H>(ms, stage, offload, ts);
    for (const auto& g : r.first_grads)
      EXPECT_LE(tensor_rel_err(g.values, ref.grads_by_name.at(g.name)), tol) << what << " " << g.name;
    for (std::size_t s = 0; s < r.loss.size(); ++s) EXPECT_LE(rel(r.loss[s], ref.loss[s]), tol) << what << " step " << s;
    const bool hier = stage > 0 && world_comm().resolve(coll::Op::Allreduce, coll::Algo::Auto, 1 << 20) == coll::Algo::Hier;
    if (ms.kind == "mlp" && !hier) {
      for (std::size_t k = 0; k < r.final_params.size(); ++k)
        EXPECT_EQ(r.final_params[k].values, base.final_params[k].values) << what << ": " << r.final_params[k].name;
    }
  }
}
}  // namespace

TEST(Zero, MixedPrecisionEveryStage) {
  check_mixed<bf16>(small_gpt(), {{2, "none"}, {3, "host"}});
  check_mixed<bf16>(small_mlp(), {{1, "none"}, {3, "none"}, {3, "file"}});
  check_mixed<fp16>(small_gpt(), {{1, "host"}, {3, "none"}, {1, "file"}});
}
