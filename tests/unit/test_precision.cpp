// Mixed precision's pieces: the 16-bit types' rounding (every fp16 value, the hardware's conversion as the reference
// where the CPU has F16C, bf16 ties to even), the 16-bit gemm within its derived bound, the loss scaler's rules, the
// non-finite check, the fused master-weight update, and the scaler's point — an fp16 backward without it loses the
// small gradients to underflow.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "partrain/kernels/gemm.hpp"
#include "partrain/kernels/optimizer.hpp"
#include "partrain/models/model_config.hpp"
#include "partrain/models/optimizer.hpp"
#include "partrain/models/trainer.hpp"
#include "test_util.hpp"

using namespace partrain;
using namespace partrain::test;
namespace k = partrain::kernels;

namespace {
float f_of(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
std::uint32_t u_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
#if defined(__x86_64__)
__attribute__((target("f16c"))) std::uint16_t hw_fp16(float f) {
  return std::uint16_t(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
__attribute__((target("f16c"))) float hw_fp16_to_float(std::uint16_t h) { return _cvtsh_ss(h); }
bool have_f16c() { return __builtin_cpu_supports("f16c"); }
#else
std::uint16_t hw_fp16(float) { return 0; }
float hw_fp16_to_float(std::uint16_t) { return 0; }
bool have_f16c() { return false; }
#endif
}  // namespace

TEST(HalfTypes, Fp16EveryValueRoundTrips) {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const float f = fp16::to_float(std::uint16_t(b));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(float(fp16(f)))) << b;
      continue;
    }
    ASSERT_EQ(fp16::from_float(f), b) << "fp16 bits " << b << " = " << f;
    if (have_f16c()) {
      ASSERT_EQ(u_of(hw_fp16_to_float(std::uint16_t(b))), u_of(f)) << b;
    }
  }
  EXPECT_EQ(float(fp16(65504.0f)), 65504.0f);
  EXPECT_TRUE(std::isinf(float(fp16(65520.0f))));  // halfway past the largest value: rounds to inf
  EXPECT_EQ(float(fp16(65519.0f)), 65504.0f);
  EXPECT_EQ(float(fp16(std::ldexp(1.0f, -24))), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(float(fp16(std::ldexp(1.0f, -25))), 0.0f);                   // a tie with zero: to even (zero)
}

TEST(HalfTypes, Fp16RoundsAsTheHardwareDoes) {
  if (!have_f16c()) GTEST_SKIP() << "no F16C on this CPU: the exhaustive round trip above still ran";
  const CounterRng rng(7, "fp16");
  for (std::uint64_t i = 0; i < 2000000; ++i) {
    // every exponent from subnormal-of-fp16 to overflow, random mantissas and signs (ties included by chance and below)
    const std::uint32_t exp = 100 + std::uint32_t(rng.below(i, 44));  // 2^-27 … 2^16
    const std::uint32_t u = (std::uint32_t(rng.below(i + (1ull << 40), 2)) << 31) | (exp << 23) |
                            std::uint32_t(rng.below(i + (1ull << 41), 1 << 23));
    const float f = f_of(u);
    ASSERT_EQ(fp16::from_float(f), hw_fp16(f)) << f;
  }
  for (std::uint32_t b = 0; b < 65535; ++b) {  // the exact midpoints between neighbouring fp16 values
    const float a = fp16::to_float(std::uint16_t(b)), c = fp16::to_float(std::uint16_t(b + 1));
    if (!std::isfinite(a) || !std::isfinite(c) || (b & 0x8000) != ((b + 1) & 0x8000)) continue;
    const float mid = float((double(a) + double(c)) / 2);
    ASSERT_EQ(fp16::from_float(mid), hw_fp16(mid)) << mid;
  }
}

TEST(HalfTypes, Bf16RoundsToNearestTiesToEven) {
  for (std::uint32_t b = 0; b < 65536; ++b) {  // every bf16 value converts back to itself
    const float f = f_of(b << 16);
    if (std::isnan(f)) continue;
    ASSERT_EQ(bf16::from_float(f), b);
  }
  const CounterRng rng(8, "bf16");
  for (std::uint64_t i = 0; i < 1000000; ++i) {
    const std::uint32_t mag = std::uint32_t(rng.below(i, 0x7f800000));
    const float f = f_of(mag | (i % 2 ? 0x80000000u : 0u));
    // in double, on magnitudes: the bf16 values below and above |f| (above the largest one: 2^128, i.e. inf)
    const double a = double(f_of(mag)), lo = double(f_of(mag & 0xffff0000u));
    const int e = std::max(int((mag >> 23) & 0xff), 1) - 127;  // the binade (subnormals: that of the smallest normal)
    const double hi = lo + std::ldexp(1.0, e - 7);
    const double dl = a - lo, dh = hi - a;
    const double want = dl < dh ? lo : dh < dl ? hi : ((mag >> 16) & 1 ? hi : lo);
    const double r = std::abs(double(float(bf16(f))));
    if (want >= std::ldexp(1.0, 128)) ASSERT_TRUE(std::isinf(r)) << f;
    else ASSERT_EQ(r, want) << f;
  }
  EXPECT_EQ(float(bf16(1.0f + std::ldexp(1.0f, -8))), 1.0f);  // a tie: to even
  EXPECT_EQ(float(bf16(1.0f + 3 * std::ldexp(1.0f, -8))), 1.0f + std::ldexp(1.0f, -6));
  EXPECT_TRUE(std::isnan(float(bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isinf(float(bf16(std::numeric_limits<float>::max()))));  // past the last midpoint
  EXPECT_TRUE(std::isinf(float(bf16(std::numeric_limits<float>::infinity()))));
}

// C = alpha·op(A)·op(B) + beta·C with 16-bit inputs and output against double on the same (16-bit) inputs. With the
// products accumulated in fp32 and C rounded once, |Ĉ − C| ≤ u_T·|C| + (k + 2)·2^-24·(|alpha|·Σ|a||b| + |beta·c0|)
// (+ fp16's subnormal spacing 2^-24 / 2): the first term the final store, the second the fp32 sums (γ_{k+1}).
template <class H>
void check_half_gemm() {
  const int M = 37, N = 29, K = 53;
  const double uT = unit_roundoff<H>();
  for (char ta : {'N', 'T'})
    for (char tb : {'N', 'T'})
      for (double beta : {0.0, 1.0}) {
        View2<H> A("A", ta == 'N' ? M : K, ta == 'N' ? K : M), B("B", tb == 'N' ? K : N, tb == 'N' ? N : K);
        View2<H> C("C", M, N);
        randn(A, "A");
        randn(B, "B");
        randn(C, "C");
        const auto a = host(A), b = host(B), c0 = host(C);
        const double alpha = 0.5;
        k::gemm<H>(ta, tb, float(alpha), A, B, float(beta), C);
        const auto c = host(C);
        for (int i = 0; i < M; ++i)
          for (int j = 0; j < N; ++j) {
            double exact = 0, mag = 0;
            for (int l = 0; l < K; ++l) {
              const double x = ta == 'N' ? a[std::size_t(i * K + l)] : a[std::size_t(l * M + i)];
              const double y = tb == 'N' ? b[std::size_t(l * N + j)] : b[std::size_t(j * K + l)];
              exact += x * y;
              mag += std::abs(x * y);
            }
            const double c_in = c0[std::size_t(i * N + j)];
            exact = alpha * exact + beta * c_in;
            const double bound = uT * std::abs(exact) + (K + 2) * std::ldexp(1.0, -24) * (alpha * mag + std::abs(beta * c_in)) +
                                 std::ldexp(1.0, -25);
            ASSERT_LE(std::abs(c[std::size_t(i * N + j)] - exact), bound)
                << precision_name<H>() << " op " << ta << tb << " beta " << beta << " at " << i << "," << j;
          }
      }
}

TEST(HalfGemm, Bf16WithinTheFp32AccumulationBound) { check_half_gemm<bf16>(); }
TEST(HalfGemm, Fp16WithinTheFp32AccumulationBound) { check_half_gemm<fp16>(); }
TEST(HalfGemm, NamesItsKernel) {
  EXPECT_FALSE(k::half_gemm_kernel("bf16").empty());
  EXPECT_FALSE(k::half_gemm_kernel("fp16").empty());
}

TEST(LossScaler, GradScalerRules) {
  models::LossScalerConfig c;
  c.initial = 1024;
  c.growth_interval = 3;
  models::LossScaler s(c);
  EXPECT_TRUE(s.update(false));
  EXPECT_TRUE(s.update(false));
  EXPECT_EQ(s.scale(), 1024);
  EXPECT_TRUE(s.update(false));  // the third finite step in a row: grow
  EXPECT_EQ(s.scale(), 2048);
  EXPECT_TRUE(s.update(false));
  EXPECT_FALSE(s.update(true));  // an overflow: skip, back off, count from zero again
  EXPECT_EQ(s.scale(), 1024);
  EXPECT_EQ(s.skipped(), 1);
  EXPECT_EQ(s.growth_tracker(), 0);
  EXPECT_TRUE(s.update(false));
  EXPECT_TRUE(s.update(false));
  EXPECT_EQ(s.scale(), 1024);
  EXPECT_TRUE(s.update(false));
  EXPECT_EQ(s.scale(), 2048);
  c.dynamic = false;  // static: the scale stays, non-finite steps are still skipped
  models::LossScaler f(c);
  EXPECT_FALSE(f.update(true));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(f.update(false));
  EXPECT_EQ(f.scale(), 1024);
  EXPECT_EQ(f.skipped(), 1);
}

TEST(MixedOptimizer, NonfiniteCount) {
  View1<fp16> g("g", 100);
  randn(g, "g");
  EXPECT_EQ(k::nonfinite_count(g), 0);
  set(g, std::vector<double>(100, 70000.0));  // past fp16's range: every element inf
  EXPECT_EQ(k::nonfinite_count(g), 100);
  View1<bf16> b("b", 10);
  auto h = Kokkos::create_mirror_view(b);
  h(3) = bf16(std::numeric_limits<float>::quiet_NaN());
  Kokkos::deep_copy(b, h);
  EXPECT_EQ(k::nonfinite_count(b), 1);
}

// The fused update equals the fp32 optimizer on the widened, unscaled gradients, and the 16-bit weights are the
// updated master weights rounded once.
TEST(MixedOptimizer, MasterUpdateEqualsFp32OnTheUnscaledGradient) {
  for (const char* kind : {"sgd", "adamw"}) {
    const int n = 1000;
    models::OptimizerConfig oc;
    oc.kind = kind;
    oc.momentum = 0.9;
    oc.weight_decay = 0.01;
    models::Optimizer<float> mixed(oc, n), plain(oc, n);
    View1<float> master("master", n), ref("ref", n), g32("g32", n);
    View1<bf16> g("g", n), half("half", n);
    randn(master, "p");
    Kokkos::deep_copy(ref, master);
    const float scale = 4096;
    for (int s = 0; s < 3; ++s) {
      randn(g, "g" + std::to_string(s), 100.0);  // the scaled gradient as backward leaves it
      const auto hg = host(g);
      std::vector<double> unscaled(hg.size());
      for (std::size_t i = 0; i < hg.size(); ++i) unscaled[i] = double(float(hg[i]) * (1.0f / scale));
      set(g32, unscaled);
      mixed.begin_step();
      mixed.update_mixed(master, g, 0, 1.0f / scale, half);
      plain.step(ref, g32);
    }
    const auto m = host(master), r = host(ref), h = host(half);
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(m[std::size_t(i)], r[std::size_t(i)]) << kind << " element " << i;
      ASSERT_EQ(h[std::size_t(i)], double(float(bf16(float(m[std::size_t(i)]))))) << kind << " element " << i;
    }
  }
}

// A rank whose own gradients are finite still skips the step when its group found an inf (the agreement tensor- and
// pipeline-parallel ranks make, their gradients being different shards), and a shared scaler is the one every store
// of the trainer reads (the pipeline's chunks): one backoff, seen by all.
TEST(MixedOptimizer, TheGroupsAnswerDecidesTheSkip) {
  models::ParamStore<fp16> ps;
  ps.declare("w", {8}, models::Init::normal(0.1));
  ps.allocate(1);
  models::TrainSpec spec;
  spec.loss_scale.initial = 1024;
  models::LossScaler shared(spec.loss_scale);
  models::MixedPrecision<fp16> a(ps, std::uint64_t(1), spec, &shared), b(ps, std::uint64_t(1), spec, &shared);
  models::Optimizer<float> opt(spec.optimizer, ps.numel());
  randn(ps.grads(), "g");
  const auto before = host(a.master());
  bool asked = false;
  EXPECT_FALSE(a.step(opt, ps, ps.grads(), [&](bool mine) {
    asked = true;
    EXPECT_FALSE(mine);  // this rank's gradients are finite
    return true;         // another rank's were not
  }));
  EXPECT_TRUE(asked);
  EXPECT_EQ(host(a.master()), before) << "a skipped step leaves the master weights";
  EXPECT_EQ(opt.steps_taken(), 0);
  EXPECT_EQ(shared.scale(), 512.0);
  EXPECT_EQ(b.loss_scale(), 512.0) << "the other store reads the same scaler";
  EXPECT_EQ(shared.skipped(), 1);
  EXPECT_TRUE(a.step(opt, ps, ps.grads(), [](bool mine) { return mine; }));
  EXPECT_NE(host(a.master()), before);
}

// A model in H and its float64 twin holding the same (rounded) weights, each with one batch of `samples` (step 0)
// and a workspace: the exact gradients of what the 16-bit model computes with.
template <class H>
struct Twin {
  std::unique_ptr<models::Model<H>> mh;
  std::unique_ptr<models::Model<double>> m64;
  std::unique_ptr<models::Dataset<H>> dh;
  std::unique_ptr<models::Dataset<double>> d64;
  models::Batch<H> bh;
  models::Batch<double> b64;
  typename models::Model<H>::Workspace wh;
  typename models::Model<double>::Workspace w64;
  Twin(const models::ModelSpec& ms, std::int64_t samples)
      : mh(models::make_model<H>(ms)), m64(models::make_model<double>(ms)), dh(models::make_dataset<H>(ms)),
        d64(models::make_dataset<double>(ms)), bh(dh->allocate(samples)), b64(d64->allocate(samples)),
        wh(mh->make_workspace(samples)), w64(m64->make_workspace(samples)) {
    set(m64->params().params(), host(mh->params().params()));
    dh->fill(0, 0, bh);
    d64->fill(0, 0, b64);
  }
};

// Why fp16 needs the scaler: a batch large enough that the gradients of the mean loss fall below fp16's normal range.
// Unscaled, the backward flushes them toward zero (relative gradient error of order one); scaled by 2^16 (GradScaler's
// default) the same backward is within sqrt(n)·u of the exact gradients of the same weights.
TEST(LossScaler, Fp16UnderflowsWithoutIt) {
  models::ModelSpec ms;
  ms.kind = "gpt";
  ms.gpt = models::GptConfig{512, 32, 2, 32, 2};
  const std::int64_t samples = 128;  // 4096 rows: dlogits ~ 1/(512·4096) ≈ 5e-7, deep in fp16's subnormals (below 6.1e-5)
  Twin<fp16> t(ms, samples);  // the exact model takes the fp16 (rounded) weights
  const double rows = double(samples * 32);
  t.m64->params().zero_grad();
  t.m64->forward_backward(t.b64, t.w64, 1.0 / rows);
  const auto exact = host(t.m64->params().grads());
  auto error_with_scale = [&](double scale) {  // the worst tensor's relative error, as torch_check measures
    t.mh->params().zero_grad();
    t.mh->forward_backward(t.bh, t.wh, scale / rows);
    auto g = host(t.mh->params().grads());
    double worst = 0;
    for (const auto& p : t.mh->params().infos()) {
      std::vector<double> mine(g.begin() + p.offset, g.begin() + p.offset + p.size);
      for (auto& x : mine) x /= scale;
      worst = std::max(worst, rel_err(mine, std::vector<double>(exact.begin() + p.offset, exact.begin() + p.offset + p.size)));
    }
    return worst;
  };
  const double n = 6 + 22 * 2, tol = std::sqrt(n) * unit_roundoff<fp16>();
  const double scaled = error_with_scale(65536.0), unscaled = error_with_scale(1.0);
  EXPECT_LT(scaled, tol) << "fp16 with the loss scaled by 2^16";
  EXPECT_GT(unscaled, 5 * tol) << "fp16 without loss scaling (scaled: " << scaled << ")";
  std::printf("fp16 backward, worst tensor's relative gradient error: %.2e with the loss scaled by 2^16, %.2e unscaled (sqrt(n)u = %.2e)\n", scaled, unscaled, tol);
}

// The NMT model in bf16 and fp16 against the exact (float64) gradients of its own rounded weights on one batch: every
// tensor within sqrt(n)·u, n = 10 + 12·(S + L_e + L_d) — each LSTM step rounds about six values forward (four gates,
// c, h) and six backward, the longest path runs through every time step of one layer and one step of every other,
// plus the embeddings, the attention, the generator and the loss (docs/precision.md).
template <class H>
void check_nmt_half() {
  models::ModelSpec ms;
  ms.kind = "nmt";
  ms.nmt = models::NmtConfig{64, 16, 16, 2, 2, 4, 8};
  Twin<H> t(ms, 6);
  const double scale = std::is_same_v<H, fp16> ? 1024.0 : 1.0;
  t.m64->params().zero_grad();
  const double l64 = t.m64->forward_backward(t.b64, t.w64, 1.0 / 48);
  t.mh->params().zero_grad();
  const double lh = t.mh->forward_backward(t.bh, t.wh, scale / 48);
  const auto exact = host(t.m64->params().grads()), g = host(t.mh->params().grads());
  const double n = 10 + 12 * (8 + 2 + 2), tol = std::sqrt(n) * unit_roundoff<H>();
  EXPECT_LE(std::abs(lh - l64) / std::abs(l64), tol) << precision_name<H>() << " loss";
  double worst = 0;
  for (const auto& p : t.mh->params().infos()) {
    std::vector<double> mine(g.begin() + p.offset, g.begin() + p.offset + p.size);
    for (auto& x : mine) x /= scale;
    const double e = rel_err(mine, std::vector<double>(exact.begin() + p.offset, exact.begin() + p.offset + p.size));
    EXPECT_LE(e, tol) << precision_name<H>() << " " << p.name;
    worst = std::max(worst, e);
  }
  std::printf("NMT %s: worst tensor's relative gradient error %.2e (sqrt(n)u = %.2e)\n", precision_name<H>().c_str(),
              worst, tol);
}

TEST(MixedNmt, Bf16AndFp16WithinTheirRoundingBound) {
  check_nmt_half<bf16>();
  check_nmt_half<fp16>();
}
