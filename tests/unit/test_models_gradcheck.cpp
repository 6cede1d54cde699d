// Whole-model gradient checks in double precision: every parameter tensor of a small MLP (GELU and ReLU), a
// small GPT and a small NMT model (padded sentences of different lengths: the backward direction's masking, the
// attention's, the loss's) against central finite differences of the mean loss over the batch.
#include <gtest/gtest.h>

#include "partrain/models/gpt_layers.hpp"
#include "partrain/models/model_config.hpp"
#include "test_util.hpp"

using namespace partrain;
using namespace partrain::test;
using namespace partrain::models;

namespace {
void gradcheck(Model<double>& model, const Dataset<double>& data, std::int64_t samples, double tol) {
  auto batch = data.allocate(samples);
  data.fill(0, 0, batch);
  auto ws = model.make_workspace(samples);
  const auto counted = data.loss_rows(0, 0, samples);
  const double rows = double(counted >= 0 ? counted : samples * model.rows_per_sample());
  model.params().zero_grad();
  model.forward_backward(batch, ws, 1.0 / rows);
  const auto grads = host(model.params().grads());
  auto loss = [&] { return model.loss_sum(batch, ws) / rows; };
  for (const auto& p : model.params().infos()) {
    auto view = model.params().flat_param(p.name);
    std::vector<double> g(grads.begin() + p.offset, grads.begin() + p.offset + p.size);
    const double err = fd_check(view, g, loss, 1e-6, 24);
    EXPECT_LT(err, tol) << p.name;
  }
}

/// p(i) = p(i)·mul + add·(i mod period): larger weights, so that every path carries signal (a free function: nvcc's
/// device lambdas cannot live in a test's private TestBody).
template <class V>
void rescale(const V& p, double mul, double add, int period) {
  Kokkos::parallel_for(Kokkos::RangePolicy<ExecSpace>(0, p.extent(0)), KOKKOS_LAMBDA(std::int64_t i) {
    p(i) = p(i) * mul + add * double(i % period);
  });
}
}  // namespace

TEST(GradCheck, MlpGeluAndRelu) {
  for (auto act : {kernels::Activation::Gelu, kernels::Activation::Relu}) {
    ModelSpec s;
    s.kind = "mlp";
    s.mlp.widths = {6, 8, 7, 4};
    s.mlp.activation = act;
    auto m = make_model<double>(s);
    auto d = make_dataset<double>(s);
    gradcheck(*m, *d, 5, 1e-6);
  }
}

TEST(GradCheck, SparseMlp) {
  // The embedding bags (a row used twice in one bag, or by several samples, adds up) and the MLP after them.
  ModelSpec s;
  s.kind = "sparse_mlp";
  s.sparse.tables = 2;
  s.sparse.rows = 5;  // few rows: the Zipf-like ids repeat within and across samples
  s.sparse.dim = 3;
  s.sparse.bag = 3;
  s.sparse.dense = 2;
  s.sparse.widths = {6};
  auto m = make_model<double>(s);
  rescale(m->params().params(), 4.0, 0.0, 1);
  auto d = make_dataset<double>(s);
  gradcheck(*m, *d, 4, 1e-6);
}

TEST(GradCheck, Gpt) {
  ModelSpec s;
  s.kind = "gpt";
  s.gpt = GptConfig{11, 5, 2, 8, 2};  // V, T, L, C, H
  auto m = make_model<double>(s);
  // GPT-2 init (std 0.02) makes gradients of deep tensors tiny; scale the weights up so every path carries signal
  auto p = m->params().params();
  rescale(p, 10.0, 0.01, 7);
  auto d = make_dataset<double>(s);
  gradcheck(*m, *d, 3, 1e-6);
}

// The mixture of experts: the router (through the gates: Switch's p_e for k = 1, renormalised for k = 2), the experts,
// the load-balancing loss, and choices dropped at a capacity below the demand (which must happen here).
TEST(GradCheck, GptMoe) {
  for (std::int64_t k : {1, 2}) {
    ModelSpec s;
    s.kind = "gpt";
    s.gpt = GptConfig{11, 5, 2, 8, 2};  // V, T, L, C, H
    s.gpt.moe.every = 1;
    s.gpt.moe.experts = 3;
    s.gpt.moe.top_k = k;
    s.gpt.moe.capacity_factor = 0.5;  // cap = ⌈0.5·k·5/3⌉: 1 (k = 1) or 2 (k = 2) rows per expert and sequence
    s.gpt.moe.aux_loss_coef = 0.3;
    auto m = make_model<double>(s);
    auto p = m->params().params();
    rescale(p, 10.0, 0.01, 7);
    auto d = make_dataset<double>(s);
    gradcheck(*m, *d, 3, 1e-6);
    // dropped choices and the auxiliary loss were in it
    auto batch = d->allocate(3);
    d->fill(0, 0, batch);
    auto ws = m->make_workspace(3);
    m->loss_sum(batch, ws);
    const auto* block = dynamic_cast<const GptBlock<double>*>(m->layers()[1].get());
    ASSERT_NE(block, nullptr);
    const auto* st = block->moe_state(*ws.states[1]);
    ASSERT_NE(st, nullptr);
    EXPECT_LT(st->rows, 3 * 5 * k) << "k = " << k << ": no choice was dropped";
    EXPECT_GT(st->rows, 0);
    EXPECT_GT(m->aux_loss_sum(ws), 0.0);
  }
}

TEST(GradCheck, Nmt) {
  ModelSpec s;
  s.kind = "nmt";
  s.nmt = NmtConfig{9, 4, 6, 3, 3, 2, 5};  // V, E, H, L_e, L_d, lengths 2..5 (residuals at index 2 on both sides)
  auto m = make_model<double>(s);
  auto p = m->params().params();  // larger weights: every path carries signal
  rescale(p, 2.0, 0.02, 5);
  auto d = make_dataset<double>(s);
  auto batch = d->allocate(4);
  d->fill(0, 0, batch);
  auto len = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.lengths);
  bool differ = false;
  for (int i = 1; i < 4; ++i) differ = differ || len(i) != len(0);
  EXPECT_TRUE(differ) << "the check needs sentences of different lengths";
  gradcheck(*m, *d, 4, 1e-6);
}
