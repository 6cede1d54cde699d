// Memory tracker: every labelled Kokkos allocation is counted in its category, live and peak.
#include <gtest/gtest.h>

#include "partrain/core/memory.hpp"
#include "partrain/core/types.hpp"
#include "../../collectives/src/scratch.hpp"

using namespace partrain;

TEST(Memory, CategoriesFromLabels) {
  EXPECT_EQ(category_of("params/gpt"), MemCategory::Params);
  EXPECT_EQ(category_of("grads/x"), MemCategory::Grads);
  EXPECT_EQ(category_of("optim/adam.m"), MemCategory::Optimizer);
  EXPECT_EQ(category_of("act/blocks.0.qkv"), MemCategory::Activations);
  EXPECT_EQ(category_of("comm/bucket.0"), MemCategory::CommBuffers);
  EXPECT_EQ(category_of("scratch"), MemCategory::Other);
  EXPECT_STREQ(category_name(MemCategory::CommBuffers), "comm_buffers");
}

TEST(Memory, CountsViewsWhileTheyLive) {
  const auto before = memory_snapshot();
  {
    View1<float> p("params/test", 1000);
    View1<double> o("optim/test", 500);
    const auto during = memory_snapshot();
    EXPECT_EQ(during.live[int(MemCategory::Params)] - before.live[int(MemCategory::Params)], 4000);
    EXPECT_EQ(during.live[int(MemCategory::Optimizer)] - before.live[int(MemCategory::Optimizer)], 4000);
    EXPECT_GE(during.peak[int(MemCategory::Params)], during.live[int(MemCategory::Params)]);
    auto sub = Kokkos::subview(p, Kokkos::make_pair(0, 10));  // a subview allocates nothing
    EXPECT_EQ(memory_snapshot().total_live, during.total_live);
    (void)sub;
  }
  const auto after = memory_snapshot();
  EXPECT_EQ(after.live[int(MemCategory::Params)], before.live[int(MemCategory::Params)]);
  EXPECT_GE(after.peak[int(MemCategory::Params)], 4000);
  EXPECT_GT(peak_rss_bytes(), 0);
}

TEST(Memory, EveryCategorySubtractsItsFrees) {
  const char* labels[] = {"params/t", "grads/t", "optim/t", "act/t", "comm/t", "other-t"};
  for (int c = 0; c < kMemCategories; ++c) {
    memory_reset_peaks();
    const auto before = memory_snapshot();
    {
      View1<double> v(std::string(labels[c]), 1000 + 100 * c);
      const auto during = memory_snapshot();
      for (int k = 0; k < kMemCategories; ++k)
        EXPECT_EQ(during.live[k] - before.live[k], k == c ? 8 * (1000 + 100 * c) : 0) << labels[c] << " in " << k;
    }
    const auto after = memory_snapshot();
    for (int k = 0; k < kMemCategories; ++k) {
      EXPECT_EQ(after.live[k], before.live[k]) << labels[c] << ": freed bytes subtracted from category " << k;
      EXPECT_EQ(after.peak[k], before.live[k] + (k == c ? 8 * (1000 + 100 * c) : 0)) << labels[c] << " peak";
    }
    EXPECT_EQ(after.total_live, before.total_live) << labels[c];
  }
}

TEST(Memory, GrowingAPooledBufferPeaksAtTheLargest) {
  // The collectives' scratch pool frees a buffer before allocating its larger replacement: the comm-buffer peak is
  // the largest buffer, not the sum of the sizes it went through.
  const int c = int(MemCategory::CommBuffers);
  memory_reset_peaks();
  const auto before = memory_snapshot();
  {
    coll::ScratchPool pool;
    for (std::int64_t bytes : {4096, 65536, 1 << 20}) {
      auto lease = pool.acquire(bytes);
      EXPECT_EQ(memory_snapshot().live[c] - before.live[c], bytes);
    }
    EXPECT_EQ(memory_snapshot().peak[c] - before.live[c], 1 << 20);
  }
  EXPECT_EQ(memory_snapshot().live[c], before.live[c]);
}
