// Causal multi-head attention: forward against a naive per-head loop, backward against finite differences.
#include <gtest/gtest.h>

#include "partrain/kernels/attention.hpp"
#include "partrain/kernels/block_attention.hpp"
#include "test_util.hpp"

using namespace partrain;
using namespace partrain::test;
namespace k = partrain::kernels;

TEST(Attention, ForwardMatchesNaive) {
  const int B = 2, Tn = 5, C = 6, H = 2, d = C / H;
  View3<double> qkv("qkv", B, Tn, 3 * C), out("out", B, Tn, C);
  randn(qkv, "qkv");
  k::AttentionState<double> st("act/t", B, Tn, H, d);
  k::attention_forward(qkv, out, H, st);
  const auto x = host(qkv), y = host(out);
  auto at = [&](int b, int t, int c) { return x[(b * Tn + t) * 3 * C + c]; };
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int t = 0; t < Tn; ++t) {
        std::vector<double> s(t + 1);
        double mx = -1e300, sum = 0;
        for (int j = 0; j <= t; ++j) {
          double v = 0;
          for (int i = 0; i < d; ++i) v += at(b, t, h * d + i) * at(b, j, C + h * d + i);
          s[j] = v / std::sqrt(double(d));
          mx = std::max(mx, s[j]);
        }
        for (int j = 0; j <= t; ++j) sum += std::exp(s[j] - mx);
        for (int i = 0; i < d; ++i) {
          double acc = 0;
          for (int j = 0; j <= t; ++j) acc += std::exp(s[j] - mx) / sum * at(b, j, 2 * C + h * d + i);
          EXPECT_NEAR(y[(b * Tn + t) * C + h * d + i], acc, 1e-12);
        }
      }
}

TEST(Attention, BackwardMatchesFiniteDifferences) {
  const int B = 2, Tn = 4, C = 6, H = 3, d = C / H;
  View3<double> qkv("qkv", B, Tn, 3 * C), out("out", B, Tn, C), R("R", B, Tn, C), dqkv("dqkv", B, Tn, 3 * C);
  randn(qkv, "qkv");
  randn(R, "R");
  k::AttentionState<double> st("act/t", B, Tn, H, d);
  auto loss = [&] {
    k::attention_forward(qkv, out, H, st);
    return dot(host(out), host(R));
  };
  loss();
  k::attention_backward(R, dqkv, H, st);
  EXPECT_LT(fd_check(qkv, host(dqkv), loss, 1e-5, 200), 1e-7);
}

// Ring attention's kernel (kernels/block_attention.hpp): a sequence cut into blocks — one block, halves, zigzag
// quarters, uneven pieces, single tokens — each query block folding in every key block in a ring's order (its own
// first, then the others rotated), in double, equals the plain attention kernel's output; the blocks' gradients,
// accumulated, equal its backward. A block of later keys changes nothing (fully masked), a partly masked one only
// its visible keys.
TEST(BlockAttention, OnlineSoftmaxEqualsPlainAttentionForEveryBlockShape) {
  const int Tn = 12, d = 4;
  View3<double> qkv("qkv", 1, Tn, 3 * d), out("out", 1, Tn, d), dout("dout", 1, Tn, d), dqkv("dqkv", 1, Tn, 3 * d);
  randn(qkv, "qkv");
  randn(dout, "dout");
  k::AttentionState<double> st("act/t", 1, Tn, 1, d);
  k::attention_forward(qkv, out, 1, st);
  const auto y = host(out);
  k::attention_backward(dout, dqkv, 1, st);
  const auto g = host(dqkv), x = host(qkv), dy = host(dout);
  // q, k, v, dO as [T, d] views
  auto column = [&](const std::vector<double>& src, int stride, int off, const char* name) {
    View2<double> v(std::string(name), Tn, d);
    auto h = Kokkos::create_mirror_view(v);
    for (int t = 0; t < Tn; ++t)
      for (int i = 0; i < d; ++i) h(t, i) = src[t * stride + off + i];
    Kokkos::deep_copy(v, h);
    return v;
  };
  const auto Q = column(x, 3 * d, 0, "q"), K = column(x, 3 * d, d, "k"), V = column(x, 3 * d, 2 * d, "v");
  const auto dO = column(dy, d, 0, "do");
  auto rows = [&](const View2<double>& v, int a, int n) { return View2<double>(v.data() + a * d, n, d); };
  const std::vector<std::vector<int>> cuts = {{12}, {6, 6}, {3, 3, 3, 3}, {5, 7}, {7, 5}, {2, 1, 4, 5},
                                              {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}};
  for (const auto& cut : cuts) {
    std::vector<int> start = {0};
    for (int c : cut) start.push_back(start.back() + c);
    const int nb = int(cut.size());
    View2<double> O("o", Tn, d), dQ("dq", Tn, d), dK("dk", Tn, d), dV("dv", Tn, d);
    View1<double> lse("lse", Tn), delta("delta", Tn);
    for (int qb = 0; qb < nb; ++qb) {
      const int q0 = start[qb], tq = cut[qb];
      k::OnlineSoftmax<double> os("act/os", tq, d);
      k::block_attention_begin(os);
      for (int r = 0; r < nb; ++r) {  // the ring's order: its own block first
        const int kb = (qb + r) % nb, k0 = start[kb], tk = cut[kb];
        View2<double> s("s", tq, tk);
        auto before = host(os.o);
        k::block_attention_step(rows(Q, q0, tq), rows(K, k0, tk), rows(V, k0, tk), q0, k0, os, s);
        if (k0 > q0 + tq - 1) EXPECT_EQ(host(os.o), before) << "a fully masked block changed the output";
      }
      View1<double> l(lse.data() + q0, tq);
      k::block_attention_finish(os, l);
      Kokkos::deep_copy(rows(O, q0, tq), os.o);
    }
    const auto o = host(O);
    double worst = 0;
    for (std::size_t i = 0; i < o.size(); ++i) worst = std::max(worst, std::abs(o[i] - y[i]));
    EXPECT_LT(worst, 1e-13) << "forward, blocks " << ::testing::PrintToString(cut);
    k::block_attention_delta(dO, O, delta);
    for (int qb = 0; qb < nb; ++qb)
      for (int kb = 0; kb < nb; ++kb) {
        const int q0 = start[qb], tq = cut[qb], k0 = start[kb], tk = cut[kb];
        View2<double> s("s", tq, tk), dp("dp", tq, tk);
        k::block_attention_backward(rows(Q, q0, tq), rows(K, k0, tk), rows(V, k0, tk), rows(dO, q0, tq),
                                    View1<double>(lse.data() + q0, tq), View1<double>(delta.data() + q0, tq), q0, k0,
                                    rows(dQ, q0, tq), rows(dK, k0, tk), rows(dV, k0, tk), s, dp);
      }
    const auto gq = host(dQ), gk = host(dK), gv = host(dV);
    double wg = 0;
    for (int t = 0; t < Tn; ++t)
      for (int i = 0; i < d; ++i) {
        wg = std::max(wg, std::abs(gq[t * d + i] - g[t * 3 * d + i]));
        wg = std::max(wg, std::abs(gk[t * d + i] - g[t * 3 * d + d + i]));
        wg = std::max(wg, std::abs(gv[t * d + i] - g[t * 3 * d + 2 * d + i]));
      }
    EXPECT_LT(wg, 1e-12) << "backward, blocks " << ::testing::PrintToString(cut);
  }
}
