// gemm (all transposes, float and double), bias, GELU, ReLU, softmax (plain and causal), embedding and the fused
// cross-entropy: forward against naive loops, backward against central finite differences (double).
#include <gtest/gtest.h>

#include "partrain/core/fast_math.hpp"
#include "partrain/kernels/activation.hpp"
#include "partrain/kernels/cross_entropy.hpp"
#include "partrain/kernels/embedding.hpp"
#include "partrain/kernels/linear.hpp"
#include "partrain/kernels/softmax.hpp"
#include "test_util.hpp"

using namespace partrain;
using namespace partrain::test;
namespace k = partrain::kernels;

template <class T>
void check_gemm(char ta, char tb, double tol) {
  const int m = 7, n = 5, kk = 9;
  View2<T> A("A", ta == 'N' ? m : kk, ta == 'N' ? kk : m), B("B", tb == 'N' ? kk : n, tb == 'N' ? n : kk);
  View2<T> C("C", m, n);
  randn(A, "A");
  randn(B, "B");
  randn(C, "C");
  const auto a = host(A), b = host(B), c0 = host(C);
  k::gemm(ta, tb, T(0.5), A, B, T(2), C);
  const auto c = host(C);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int l = 0; l < kk; ++l) {
        const double av = ta == 'N' ? a[i * kk + l] : a[l * m + i];
        const double bv = tb == 'N' ? b[l * n + j] : b[j * kk + l];
        s += av * bv;
      }
      EXPECT_NEAR(c[i * n + j], 0.5 * s + 2 * c0[i * n + j], tol) << ta << tb << " " << i << "," << j;
    }
}

TEST(Gemm, AllTransposesFloatAndDouble) {
  for (char ta : {'N', 'T'})
    for (char tb : {'N', 'T'}) {
      check_gemm<double>(ta, tb, 1e-12);
      check_gemm<float>(ta, tb, 1e-4);
    }
}

TEST(Gemm, EmptyInnerDimensionScalesC) {
  View2<double> A("A", 3, 0), B("B", 0, 2), C("C", 3, 2);
  Kokkos::deep_copy(C, 4.0);
  k::gemm('N', 'N', 1.0, A, B, 0.5, C);
  for (double v : host(C)) EXPECT_EQ(v, 2.0);
}

TEST(Linear, BackwardMatchesFiniteDifferences) {
  const int N = 4, in = 6, out = 3;
  View2<double> x("x", N, in), W("W", out, in), y("y", N, out), R("R", N, out);
  View1<double> b("b", out);
  randn(x, "x");
  randn(W, "W");
  randn(b, "b");
  randn(R, "R");
  auto loss = [&] {
    k::linear_forward(x, W, b, y);
    return dot(host(y), host(R));
  };
  View2<double> dx("dx", N, in), dW("dW", out, in);
  View1<double> db("db", out);
  k::linear_backward(R, x, W, dx, dW, db);
  EXPECT_LT(fd_check(x, host(dx), loss), 1e-7);
  EXPECT_LT(fd_check(W, host(dW), loss), 1e-7);
  EXPECT_LT(fd_check(b, host(db), loss), 1e-7);
}

TEST(Activation, GeluAndReluForwardAndBackward) {
  const int n = 50;
  View1<double> x("x", n), y("y", n), R("R", n), dx("dx", n);
  randn(x, "x", 2.0);
  randn(R, "R");
  const auto hx = host(x);
  k::gelu_forward(x, y);
  auto hy = host(y);
  for (int i = 0; i < n; ++i) {
    const double v = hx[i];
    EXPECT_NEAR(hy[i], 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))), 1e-14);
  }
  k::gelu_backward(x, R, dx);
  EXPECT_LT(fd_check(x, host(dx), [&] { k::gelu_forward(x, y); return dot(host(y), host(R)); }), 1e-8);
  k::relu_forward(x, y);
  hy = host(y);
  for (int i = 0; i < n; ++i) EXPECT_EQ(hy[i], hx[i] > 0 ? hx[i] : 0.0);
  k::relu_backward(x, R, dx);
  EXPECT_LT(fd_check(x, host(dx), [&] { k::relu_forward(x, y); return dot(host(y), host(R)); }), 1e-8);
}

TEST(Softmax, ForwardPlainAndCausalBackward) {
  const int N = 5, V = 5;
  View2<double> x("x", N, V), y("y", N, V), R("R", N, V), dx("dx", N, V);
  randn(x, "x", 3.0);
  randn(R, "R");
  for (int offset : {-1, 0}) {
    k::softmax_forward(x, y, offset);
    const auto hx = host(x), hy = host(y);
    for (int n = 0; n < N; ++n) {
      const int valid = offset < 0 ? V : n + 1;
      double mx = -1e300, s = 0;
      for (int j = 0; j < valid; ++j) mx = std::max(mx, hx[n * V + j]);
      for (int j = 0; j < valid; ++j) s += std::exp(hx[n * V + j] - mx);
      for (int j = 0; j < V; ++j)
        EXPECT_NEAR(hy[n * V + j], j < valid ? std::exp(hx[n * V + j] - mx) / s : 0.0, 1e-14);
    }
    k::softmax_backward(y, R, dx);
    auto loss = [&] {
      k::softmax_forward(x, y, offset);
      return dot(host(y), host(R));
    };
    EXPECT_LT(fd_check(x, host(dx), loss), 1e-7) << "offset " << offset;
  }
}

TEST(CrossEntropy, ForwardNaiveBackwardFdAndInPlace) {
  const int N = 6, V = 7;
  View2<double> z("z", N, V), dz("dz", N, V);
  IndexView1 t("t", N);
  View1<double> losses("l", N);
  randn(z, "z", 4.0);
  ints(t, "t", V);
  const auto hz = host(z), ht = host(t);
  k::cross_entropy_forward(z, t, losses);
  const auto hl = host(losses);
  for (int n = 0; n < N; ++n) {
    double s = 0;
    for (int j = 0; j < V; ++j) s += std::exp(hz[n * V + j]);
    EXPECT_NEAR(hl[n], std::log(s) - hz[n * V + int(ht[n])], 1e-12);
  }
  const double scale = 1.0 / 10;  // as if the global batch had 10 rows
  k::cross_entropy_forward_backward(z, t, scale, losses, dz);
  auto loss = [&] {
    k::cross_entropy_forward(z, t, losses);
    return scale * k::cross_entropy_sum(losses);
  };
  EXPECT_LT(fd_check(z, host(dz), loss), 1e-7);
  // in place gives the same gradient
  View2<double> zz("zz", N, V);
  Kokkos::deep_copy(zz, z);
  k::cross_entropy_forward_backward(zz, t, scale, losses, zz);
  EXPECT_LT(rel_err(host(zz), host(dz)), 1e-15);
  // stable for huge logits
  Kokkos::deep_copy(zz, 1e4);
  k::cross_entropy_forward(zz, t, losses);
  for (double l : host(losses)) EXPECT_NEAR(l, std::log(double(V)), 1e-9);
}

TEST(Embedding, LookupPositionsAndScatterBackward) {
  const int V = 5, C = 3, Tn = 4, B = 3, N = B * Tn;
  View2<double> wte("wte", V, C), wpe("wpe", Tn, C), out("out", N, C), R("R", N, C);
  IndexView1 ids("ids", N);
  randn(wte, "wte");
  randn(wpe, "wpe");
  randn(R, "R");
  ints(ids, "ids", V);  // repeats ids: the scatter must accumulate
  auto fwd = [&] {
    k::embedding_forward(ids, wte, out);
    k::position_add(out, wpe);
  };
  fwd();
  const auto ho = host(out), he = host(wte), hp = host(wpe), hi = host(ids);
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) EXPECT_EQ(ho[n * C + c], he[int(hi[n]) * C + c] + hp[(n % Tn) * C + c]);
  View2<double> dwte("dwte", V, C), dwpe("dwpe", Tn, C);
  k::embedding_backward(ids, R, dwte);
  k::position_backward(R, dwpe);
  auto loss = [&] { fwd(); return dot(host(out), host(R)); };
  EXPECT_LT(fd_check(wte, host(dwte), loss), 1e-8);
  EXPECT_LT(fd_check(wpe, host(dwpe), loss), 1e-8);
}

TEST(Bias, ForwardAndBackward) {
  View2<double> y("y", 4, 3), R("R", 4, 3);
  View1<double> b("b", 3), db("db", 3);
  randn(b, "b");
  randn(R, "R");
  k::bias_backward(R, db);
  auto loss = [&] {
    Kokkos::deep_copy(y, 1.0);
    k::bias_add(y, b);
    return dot(host(y), host(R));
  };
  EXPECT_LT(fd_check(b, host(db), loss), 1e-8);
}

TEST(FastMath, FloatExpAndTanhAccuracy) {
  double worst_exp = 0, worst_tanh = 0;
  for (int i = -20000; i <= 20000; ++i) {
    const float x = float(i) * 0.004f;  // [-80, 80]
    const double e = std::exp(double(x));
    worst_exp = std::max(worst_exp, std::abs(double(exp_vec(x)) - e) / e);
    worst_tanh = std::max(worst_tanh, std::abs(double(tanh_vec(x)) - std::tanh(double(x))));
  }
  EXPECT_LT(worst_exp, 4e-7);   // a few float ulps
  EXPECT_LT(worst_tanh, 3e-7);  // absolute
}
