// Causal multi-head attention: forward against a naive per-head loop, backward against finite differences.
#include <gtest/gtest.h>

#include "partrain/kernels/attention.hpp"
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
