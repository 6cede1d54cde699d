// SGD (with and without momentum), Adam, AdamW and AdaGrad: several steps against the torch.optim formulas in double.
#include <gtest/gtest.h>

#include "partrain/kernels/optimizer.hpp"
#include "test_util.hpp"

using namespace partrain;
using namespace partrain::test;
namespace k = partrain::kernels;

TEST(Optimizer, SgdWithAndWithoutMomentum) {
  for (double mu : {0.0, 0.9}) {
    const int n = 10;
    View1<double> p("p", n), g("g", n), buf("buf", n);
    randn(p, "p");
    std::vector<double> rp = host(p), rb(n, 0.0);
    const k::SgdParams hp{0.1, mu, 0.01};
    for (int s = 0; s < 3; ++s) {
      randn(g, "g" + std::to_string(s));
      const auto hg = host(g);
      k::sgd_step(p, g, buf, hp);
      for (int i = 0; i < n; ++i) {
        const double d = hg[i] + hp.weight_decay * rp[i];
        rb[i] = mu == 0 ? d : mu * rb[i] + d;
        rp[i] -= hp.lr * rb[i];
      }
    }
    EXPECT_LT(rel_err(host(p), rp), 1e-14);
  }
}

TEST(Optimizer, AdamAndAdamW) {
  for (bool decoupled : {false, true}) {
    const int n = 10;
    View1<double> p("p", n), g("g", n), m("m", n), v("v", n);
    randn(p, "p");
    std::vector<double> rp = host(p), rm(n, 0.0), rv(n, 0.0);
    const k::AdamParams hp{1e-2, 0.9, 0.99, 1e-8, 0.1, decoupled};
    for (int s = 1; s <= 4; ++s) {
      randn(g, "g" + std::to_string(s));
      const auto hg = host(g);
      k::adam_step(p, g, m, v, hp, s);
      for (int i = 0; i < n; ++i) {
        double gi = hg[i];
        if (decoupled) rp[i] -= hp.lr * hp.weight_decay * rp[i];
        else gi += hp.weight_decay * rp[i];
        rm[i] = hp.beta1 * rm[i] + (1 - hp.beta1) * gi;
        rv[i] = hp.beta2 * rv[i] + (1 - hp.beta2) * gi * gi;
        const double mh = rm[i] / (1 - std::pow(hp.beta1, s)), vh = rv[i] / (1 - std::pow(hp.beta2, s));
        rp[i] -= hp.lr * mh / (std::sqrt(vh) + hp.eps);
      }
    }
    EXPECT_LT(rel_err(host(p), rp), 1e-13) << (decoupled ? "adamw" : "adam");
  }
}

TEST(Optimizer, AdagradAndItsLazyRows) {
  // torch.optim.Adagrad (lr_decay 0, initial accumulator 0): s += g'^2, p -= lr g' / (sqrt(s) + eps), g' = g + wd p.
  for (double wd : {0.0, 0.1}) {
    const int n = 10;
    View1<double> p("p", n), g("g", n), acc("acc", n);
    randn(p, "p");
    std::vector<double> rp = host(p), rs(n, 0.0);
    const k::AdagradParams hp{0.05, 1e-10, wd};
    for (int s = 0; s < 4; ++s) {
      randn(g, "g" + std::to_string(s));
      const auto hg = host(g);
      k::adagrad_step(p, g, acc, hp);
      for (int i = 0; i < n; ++i) {
        const double gi = hg[i] + wd * rp[i];
        rs[i] += gi * gi;
        rp[i] -= hp.lr * gi / (std::sqrt(rs[i]) + hp.eps);
      }
    }
    EXPECT_LT(rel_err(host(p), rp), 1e-14) << "weight decay " << wd;
  }
  // Without weight decay an element whose gradient is 0 keeps its value and its accumulator exactly: updating only
  // the rows a sparse batch touched (the hybrid parameter server's lazy rows) is the dense update.
  View1<double> p("p", 4), g("g", 4), acc("acc", 4);
  randn(p, "p");
  const auto before = host(p);
  k::adagrad_step(p, g, acc, k::AdagradParams{0.05, 1e-10, 0.0});
  EXPECT_EQ(host(p), before);
  EXPECT_EQ(host(acc), std::vector<double>(4, 0.0));
}
