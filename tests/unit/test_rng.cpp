// Counter-based RNG: a shard filled with its global offset equals the same slice of the whole tensor, values
// depend on (seed, name, stream) only, and the normal stream has the right moments.
#include <gtest/gtest.h>

#include <cmath>

#include "partrain/core/rng.hpp"

using namespace partrain;

TEST(Rng, ShardEqualsSliceOfWhole) {
  const CounterRng rng(7, "blocks.0.attn.qkv.weight");
  const std::int64_t n = 1000;
  View1<float> whole("whole", n);
  fill_normal(whole, rng, 0.0, 0.02);
  auto hw = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), whole);
  for (std::int64_t shards : {2, 3, 4, 7}) {
    const std::int64_t per = (n + shards - 1) / shards;
    for (std::int64_t s = 0; s < shards; ++s) {
      const std::int64_t lo = s * per, hi = std::min(n, lo + per);
      View1<float> part("part", hi - lo);
      fill_normal(part, rng, 0.0, 0.02, std::uint64_t(lo));
      auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), part);
      for (std::int64_t i = lo; i < hi; ++i) ASSERT_EQ(hp(i - lo), hw(i)) << "shard " << s << " of " << shards;
    }
  }
}

TEST(Rng, KeyedByNameSeedAndStreamNotCallOrder) {
  const CounterRng a(1, "x"), b(1, "x"), c(2, "x"), d(1, "y"), e(1, "x", 5);
  EXPECT_EQ(a.bits(3), b.bits(3));
  EXPECT_NE(a.bits(3), c.bits(3));
  EXPECT_NE(a.bits(3), d.bits(3));
  EXPECT_NE(a.bits(3), e.bits(3));
  EXPECT_EQ(a.bits(10), a.bits(10));
}

TEST(Rng, NormalMoments) {
  const CounterRng rng(3, "moments");
  const int n = 200000;
  double s = 0, s2 = 0;
  for (int i = 0; i < n; ++i) {
    const double z = rng.normal(i);
    s += z;
    s2 += z * z;
  }
  EXPECT_NEAR(s / n, 0.0, 0.01);
  EXPECT_NEAR(s2 / n, 1.0, 0.01);
  for (int i = 0; i < 1000; ++i) {
    const double u = rng.uniform(i);
    ASSERT_GT(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

TEST(Rng, ReferenceValuesAreStable) {
  // Pinned so any reimplementation (e.g. a PyTorch loader) can check itself against these.
  const CounterRng rng(1234, "wte");
  EXPECT_EQ(rng_mix(0), 0ULL);
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ULL);
  const double z0 = rng.normal(0);
  EXPECT_TRUE(std::isfinite(z0));
  EXPECT_EQ(rng.bits(0), CounterRng(1234, "wte").bits(0));
}
