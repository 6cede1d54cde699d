// LSTM cell: forward against PyTorch's equations written out, backward (x, h, c, weights, biases) against
// finite differences of a loss on both h' and c'.
#include <gtest/gtest.h>

#include "partrain/kernels/lstm.hpp"
#include "test_util.hpp"

using namespace partrain;
using namespace partrain::test;
namespace k = partrain::kernels;

namespace {
struct Cell {
  int B = 3, I = 4, H = 5;
  View2<double> x{"x", 3, 4}, h{"h", 3, 5}, c{"c", 3, 5}, gates{"g", 3, 20}, cn{"cn", 3, 5}, hn{"hn", 3, 5};
  k::LstmWeights<double> w{View2<double>("wih", 20, 4), View2<double>("whh", 20, 5), View1<double>("bih", 20),
                           View1<double>("bhh", 20)};
  Cell() {
    randn(x, "x");
    randn(h, "h");
    randn(c, "c");
    randn(w.w_ih, "wih", 0.5);
    randn(w.w_hh, "whh", 0.5);
    randn(w.b_ih, "bih", 0.5);
    randn(w.b_hh, "bhh", 0.5);
  }
  void forward() { k::lstm_cell_forward(x, h, c, w, gates, cn, hn); }
};
double sig(double v) { return 1 / (1 + std::exp(-v)); }
}  // namespace

TEST(Lstm, ForwardMatchesEquations) {
  Cell cell;
  cell.forward();
  const auto x = host(cell.x), h = host(cell.h), c = host(cell.c), wih = host(cell.w.w_ih), whh = host(cell.w.w_hh),
             bih = host(cell.w.b_ih), bhh = host(cell.w.b_hh), hn = host(cell.hn), cn = host(cell.cn);
  const int I = cell.I, H = cell.H;
  for (int n = 0; n < cell.B; ++n)
    for (int j = 0; j < H; ++j) {
      double g[4];
      for (int q = 0; q < 4; ++q) {
        const int r = q * H + j;
        g[q] = bih[r] + bhh[r];
        for (int i = 0; i < I; ++i) g[q] += x[n * I + i] * wih[r * I + i];
        for (int i = 0; i < H; ++i) g[q] += h[n * H + i] * whh[r * H + i];
      }
      const double cc = sig(g[1]) * c[n * H + j] + sig(g[0]) * std::tanh(g[2]);
      EXPECT_NEAR(cn[n * H + j], cc, 1e-12);
      EXPECT_NEAR(hn[n * H + j], sig(g[3]) * std::tanh(cc), 1e-12);
    }
}

TEST(Lstm, BackwardMatchesFiniteDifferences) {
  Cell cell;
  View2<double> Rh("Rh", 3, 5), Rc("Rc", 3, 5), dg("dg", 3, 20), dx("dx", 3, 4), dh("dh", 3, 5), dc("dc", 3, 5);
  randn(Rh, "Rh");
  randn(Rc, "Rc");
  k::LstmWeights<double> dw{View2<double>("dwih", 20, 4), View2<double>("dwhh", 20, 5), View1<double>("dbih", 20),
                            View1<double>("dbhh", 20)};
  auto loss = [&] {
    cell.forward();
    return dot(host(cell.hn), host(Rh)) + dot(host(cell.cn), host(Rc));
  };
  loss();
  k::lstm_cell_backward(Rh, Rc, cell.x, cell.h, cell.c, cell.gates, cell.cn, cell.w, dg, dx, dh, dc, dw);
  EXPECT_LT(fd_check(cell.x, host(dx), loss), 1e-7);
  EXPECT_LT(fd_check(cell.h, host(dh), loss), 1e-7);
  EXPECT_LT(fd_check(cell.c, host(dc), loss), 1e-7);
  EXPECT_LT(fd_check(cell.w.w_ih, host(dw.w_ih), loss), 1e-7);
  EXPECT_LT(fd_check(cell.w.w_hh, host(dw.w_hh), loss), 1e-7);
  EXPECT_LT(fd_check(cell.w.b_ih, host(dw.b_ih), loss), 1e-7);
  EXPECT_LT(fd_check(cell.w.b_hh, host(dw.b_hh), loss), 1e-7);
}
