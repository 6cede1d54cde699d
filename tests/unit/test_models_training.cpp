// The synthetic tasks are learnable (the MLP's teacher, GPT's Markov chain, the NMT model's reversed translation): a few hundred steps of the reference loop bring the loss clearly down,
// and the loop is deterministic (two runs give identical losses).
#include <gtest/gtest.h>

#include "partrain/models/trainer.hpp"

using namespace partrain;
using namespace partrain::models;

namespace {
std::vector<double> losses(const ModelSpec& ms, const TrainSpec& ts) {
  auto m = make_model<float>(ms);
  auto d = make_dataset<float>(ms);
  ReferenceTrainer<float> tr(*m, *d, ts);
  std::vector<double> out;
  for (const auto& r : tr.run()) out.push_back(r.loss);
  return out;
}
double mean(const std::vector<double>& v, size_t lo, size_t hi) {
  double s = 0;
  for (size_t i = lo; i < hi; ++i) s += v[i];
  return s / double(hi - lo);
}
}  // namespace

TEST(Training, MlpLearnsTheTeacher) {
  ModelSpec ms;
  ms.kind = "mlp";
  ms.mlp.widths = {16, 64, 64, 8};
  TrainSpec ts;
  ts.global_batch = 64;
  ts.steps = 300;
  ts.optimizer.lr = 3e-3;
  const auto l = losses(ms, ts);
  const double start = mean(l, 0, 10), end = mean(l, l.size() - 20, l.size());
  EXPECT_NEAR(start, std::log(8.0), 0.7);
  EXPECT_LT(end, 0.5 * start) << "start " << start << " end " << end;
}

TEST(Training, GptLearnsTheMarkovChain) {
  ModelSpec ms;
  ms.kind = "gpt";
  ms.gpt = GptConfig{32, 16, 2, 32, 2};
  TrainSpec ts;
  ts.global_batch = 16;
  ts.steps = 200;
  ts.optimizer.lr = 3e-3;
  const auto l = losses(ms, ts);
  const double start = mean(l, 0, 5), end = mean(l, l.size() - 20, l.size());
  EXPECT_NEAR(start, std::log(32.0), 0.2);
  EXPECT_LT(end, 2.2) << "start " << start << " end " << end;  // ln 32 = 3.47; the chain's entropy is ≤ ln 4
}

TEST(Training, NmtLearnsTheReversedTranslation) {
  ModelSpec ms;
  ms.kind = "nmt";
  ms.nmt = NmtConfig{16, 32, 32, 3, 3, 3, 6};  // 14 words, E = H = 32, 3 + 3 layers (residuals), lengths 3..6
  TrainSpec ts;
  ts.global_batch = 32;
  ts.steps = 300;
  ts.optimizer.lr = 1e-2;
  const auto l = losses(ms, ts);
  const double start = mean(l, 0, 5), end = mean(l, l.size() - 20, l.size());
  EXPECT_NEAR(start, std::log(16.0), 0.3);
  EXPECT_LT(end, 0.4 * start) << "start " << start << " end " << end;  // y_0 = π(last word): attention is needed
}

TEST(Training, Deterministic) {
  ModelSpec ms;
  ms.kind = "gpt";
  ms.gpt = GptConfig{16, 8, 1, 16, 2};
  TrainSpec ts;
  ts.global_batch = 4;
  ts.steps = 5;
  EXPECT_EQ(losses(ms, ts), losses(ms, ts));
}
