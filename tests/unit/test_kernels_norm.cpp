// LayerNorm: forward against the formula, backward (input, gain, bias; dx accumulated) against finite differences.
#include <gtest/gtest.h>

#include "partrain/kernels/layernorm.hpp"
#include "test_util.hpp"

using namespace partrain;
using namespace partrain::test;
namespace k = partrain::kernels;

TEST(LayerNorm, ForwardMatchesFormula) {
  const int N = 4, C = 8;
  View2<double> x("x", N, C), y("y", N, C);
  View1<double> w("w", C), b("b", C), mean("m", N), rstd("r", N);
  randn(x, "x", 3.0);
  randn(w, "w");
  randn(b, "b");
  k::layernorm_forward(x, w, b, y, mean, rstd);
  const auto hx = host(x), hy = host(y), hw = host(w), hb = host(b);
  for (int n = 0; n < N; ++n) {
    double m = 0, v = 0;
    for (int c = 0; c < C; ++c) m += hx[n * C + c] / C;
    for (int c = 0; c < C; ++c) v += (hx[n * C + c] - m) * (hx[n * C + c] - m) / C;
    for (int c = 0; c < C; ++c)
      EXPECT_NEAR(hy[n * C + c], (hx[n * C + c] - m) / std::sqrt(v + 1e-5) * hw[c] + hb[c], 1e-12);
  }
}

TEST(LayerNorm, BackwardMatchesFiniteDifferencesAndAccumulates) {
  const int N = 5, C = 6;
  View2<double> x("x", N, C), y("y", N, C), R("R", N, C), dx("dx", N, C);
  View1<double> w("w", C), b("b", C), mean("m", N), rstd("r", N), dw("dw", C), db("db", C);
  randn(x, "x", 2.0);
  randn(w, "w");
  randn(b, "b");
  randn(R, "R");
  auto loss = [&] {
    k::layernorm_forward(x, w, b, y, mean, rstd);
    return dot(host(y), host(R));
  };
  loss();
  Kokkos::deep_copy(dx, 1.0);  // dx accumulates: start from ones and subtract them afterwards
  k::layernorm_backward(R, x, w, mean, rstd, dx, dw, db);
  auto hdx = host(dx);
  for (auto& v : hdx) v -= 1.0;
  EXPECT_LT(fd_check(x, hdx, loss), 1e-7);
  EXPECT_LT(fd_check(w, host(dw), loss), 1e-8);
  EXPECT_LT(fd_check(b, host(db), loss), 1e-8);
}
