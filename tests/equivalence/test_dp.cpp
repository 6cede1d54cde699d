// Data parallelism matches the single-process reference on the same global batch: after 1 step (loss and every
// gradient tensor) and over 20 steps (loss trajectory), for both models, each gradient algorithm, with and
// without overlap, at whatever rank count this runs (registered at np 1, 2, 3, 4).
#include <gtest/gtest.h>

#include "equivalence_util.hpp"
#include "partrain/parallel/dp/data_parallel.hpp"

using namespace partrain;
using namespace partrain::test;

namespace {
void check(const models::ModelSpec& ms, coll::Algo algo, bool overlap) {
  const auto ts = small_train(20);
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
                           std::to_string(comm.size()) + " " + ms.kind;
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
