// Data parallelism matches the single-process reference on the same global batch: after 1 step (loss and every
// gradient tensor) and over 20 steps (loss trajectory), for both models, each gradient algorithm, with and
// without overlap, at whatever rank count this runs (registered at np 1, 2, 3, 4).
#include <gtest/gtest.h>

#include "equivalence_util.hpp"
#include "partrain/parallel/dp/data_parallel.hpp"

using namespace partrain;
using namespace partrain::test;

namespace {
/// `batch`: the global batch (12 divides by 1–4 ranks; others give some ranks one sample more: parallel::share_of).
void check(const models::ModelSpec& ms, coll::Algo algo, bool overlap, std::int64_t batch = 12) {
  auto ts = small_train(20);
  ts.global_batch = batch;
  const auto ref = reference_run(ms, ts);
  auto& comm = world_comm();
  auto m = models::make_model<float>(ms);
  auto d = models::make_dataset<float>(ms);
  parallel::DpOptions o;
  o.algo = algo;
  o.overlap = overlap;
  o.bucket_mib = 0.002;  // ~500 floats: several buckets even for these small models
  parallel::DataParallelTrainer<float> tr(*m, *d, ts, comm, o);
  const std::string what = std::string(coll::name(algo)) + (overlap ? " overlap" : " no overlap") + " np " +
                           std::to_string(comm.size()) + " " + ms.kind + " batch " + std::to_string(batch);
  EXPECT_GT(tr.buckets().buckets().size(), 1u) << what;
  std::vector<double> grads;
  std::vector<double> loss;
  for (std::int64_t s = 0; s < ts.steps; ++s) {
    auto r = tr.step(s, [&](double) {
      if (s == 0) {
        auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), m->params().grads());
        grads.assign(h.data(), h.data() + h.size());
      }
    });
    loss.push_back(r.loss);
  }
  EXPECT_LE(rel(loss[0], ref.loss[0]), kLossTol) << what;
  expect_grads_close(*m, grads, ref.first_grads, kGradTol, what);
  // The launch order the overlap depends on, from the bucket plan (not from timing): with overlap, bucket k (the
  // plan's k-th from the end of the buffer) goes when its lowest layer's backward ends, in the plan's order; without,
  // all go at the end, in the same order.
  const auto& launches = tr.bucket_launches();
  ASSERT_EQ(launches.size(), tr.buckets().buckets().size()) << what;
  for (std::size_t k = 0; k < launches.size(); ++k) {
    EXPECT_EQ(launches[k].first, k) << what << ": launch " << k;
    EXPECT_EQ(launches[k].second, overlap ? std::int64_t(tr.buckets().buckets()[k].ready_layer) : -1)
        << what << ": bucket " << k << " launched after the wrong layer";
  }
  for (std::size_t s = 0; s < loss.size(); ++s) EXPECT_LE(rel(loss[s], ref.loss[s]), kTrajectoryTol) << what << " step " << s;
}

/// The gradient algorithms to try: the flat ones, and shm on one node or hier across nodes (tests/cluster).
std::vector<coll::Algo> gradient_algorithms() {
  const coll::MpiCommunicator& world = world_comm();
  return {coll::Algo::Ring, coll::Algo::RecDbl, coll::Algo::Vendor,
          world.single_node() ? coll::Algo::Shm : coll::Algo::Hier};
}
}  // namespace

TEST(DataParallel, GptMatchesReference) {
  for (auto algo : gradient_algorithms())
    for (bool overlap : {true, false}) check(small_gpt(), algo, overlap);
}

TEST(DataParallel, MlpMatchesReference) {
  for (auto algo : gradient_algorithms())
    for (bool overlap : {true, false}) check(small_mlp(), algo, overlap);
}

TEST(DataParallel, UnevenSharesMatchReference) {
  // B/n or B/n + 1 samples per rank (the brief's shares): 13 at every rank count, 64 at 3 ranks (22 + 21 + 21); the
  // shares are the global batch in order, and the loss and gradients those of the whole batch's mean
  const int n = world_comm().size();
  for (std::int64_t b : {13, 64}) {
    if (b == 64 && n != 3) continue;
    EXPECT_EQ(parallel::share_of(b, n, n - 1).first + parallel::share_of(b, n, n - 1).count, b);
    check(small_gpt(), coll::Algo::Auto, true, b);
    check(small_mlp(), coll::Algo::Ring, true, b);
  }
}

TEST(DataParallel, BucketsCoverTheGradientBufferInReverseLayerOrder) {
  auto m = models::make_model<float>(small_gpt());
  std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
  for (std::size_t i = 0; i < m->layers().size(); ++i) ranges.push_back(m->declared_range(i));
  for (std::int64_t elems : {1, 300, 5000, 1 << 30}) {
    parallel::GradientBuckets b(ranges, elems);
    std::int64_t covered = 0, prev_begin = m->params().numel();
    for (const auto& k : b.buckets()) {
      EXPECT_EQ(k.end, prev_begin);  // contiguous, from the end of the buffer backwards
      prev_begin = k.begin;
      covered += k.size();
    }
    EXPECT_EQ(prev_begin, 0);
    EXPECT_EQ(covered, m->params().numel());
    // wte is declared by layer 0 (the embedding), so the bucket holding it waits for layer 0's backward
    EXPECT_EQ(b.buckets().back().ready_layer, 0u);
  }
}

// Mixed precision (bf16, fp16): data parallelism equals the reference run in the same precision, its gradients
// reduced in the 16-bit type or widened to fp32, over every algorithm. Both runs are within sqrt(n)·u of the exact
// values of their weights (n the 16-bit roundings on the model's longest path: 6 + 22 per GPT block, 1 + 4 per MLP
// layer; docs/precision.md), so they differ by at most 2·sqrt(n)·u — per gradient tensor after one step, and the loss
// over 5 steps (measured: a tenth of that and less). bf16 on the ring and auto (shm, or hier across nodes), fp16 on
// MPI's own (the user reduction), the fp32 reduction, the MLP — not every combination, for the suite's time at 4
// ranks on 2 cores; tests/mpi/test_collectives.cpp runs every algorithm in both types.
namespace {
template <class H>
void check_mixed(const models::ModelSpec& ms, coll::Algo algo, bool reduce_fp32) {
  auto ts = small_train(5);
  ts.precision = precision_name<H>();
  static std::map<std::string, Trajectory> refs;  // one reference per model and precision, whatever the algorithm
  auto& ref = refs[ms.kind + precision_name<H>()];
  if (ref.loss.empty()) ref = reference_run<H>(ms, ts);
  auto& comm = world_comm();
  auto m = models::make_model<H>(ms);
  auto d = models::make_dataset<H>(ms);
  parallel::DpOptions o;
  o.algo = algo;
  o.bucket_mib = 0.002;
  o.reduce_fp32 = reduce_fp32;
  parallel::DataParallelTrainer<H> tr(*m, *d, ts, comm, o, nullptr, ms.seed);
  const std::string what = precision_name<H>() + " " + coll::name(algo) + (reduce_fp32 ? " reduced in fp32" : "") +
                           " np " + std::to_string(comm.size()) + " " + ms.kind;
  const double n = ms.kind == "gpt" ? 6 + 22 * ms.gpt.layers : 1 + 4 * double(ms.mlp.widths.size() - 1);
  const double tol = 2 * std::sqrt(n) * unit_roundoff<H>();
  std::vector<double> grads, loss;
  double worst_grad = 0, worst_loss = 0;
  for (std::int64_t s = 0; s < ts.steps; ++s) {
    auto r = tr.step(s, [&](double) {
      if (s != 0) return;
      for (const auto& t : tr.gather_full(true)) grads.insert(grads.end(), t.values.begin(), t.values.end());
    });
    loss.push_back(r.loss);
  }
  expect_grads_close(*m, grads, ref.first_grads, tol, what);
  for (const auto& p : m->params().infos()) {
    double num = 0, den = 0;
    for (std::int64_t i = p.offset; i < p.offset + p.size; ++i) {
      num += (grads[std::size_t(i)] - ref.first_grads[std::size_t(i)]) * (grads[std::size_t(i)] - ref.first_grads[std::size_t(i)]);
      den += ref.first_grads[std::size_t(i)] * ref.first_grads[std::size_t(i)];
    }
    worst_grad = std::max(worst_grad, std::sqrt(num / std::max(den, 1e-60)));
  }
  for (std::size_t s = 0; s < loss.size(); ++s) {
    EXPECT_LE(rel(loss[s], ref.loss[s]), tol) << what << " step " << s;
    worst_loss = std::max(worst_loss, rel(loss[s], ref.loss[s]));
  }
  if (comm.rank() == 0)
    std::printf("%s: worst gradient tensor %.1e, worst loss over 5 steps %.1e (tolerance %.2g)\n", what.c_str(),
                worst_grad, worst_loss, tol);
}
}  // namespace

TEST(DataParallel, MixedPrecisionMatchesTheReferenceInItsPrecision) {
  check_mixed<bf16>(small_gpt(), coll::Algo::Ring, false);
  check_mixed<bf16>(small_gpt(), coll::Algo::Auto, false);
  check_mixed<fp16>(small_gpt(), coll::Algo::Vendor, false);
  check_mixed<bf16>(small_gpt(), coll::Algo::Ring, true);
  check_mixed<bf16>(small_mlp(), coll::Algo::Auto, false);
  check_mixed<fp16>(small_mlp(), coll::Algo::Auto, true);
}
