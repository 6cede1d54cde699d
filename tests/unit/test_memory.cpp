// Memory tracker: every labelled Kokkos allocation is counted in its category, live and peak.
#include <gtest/gtest.h>

#include "partrain/core/memory.hpp"
#include "partrain/core/types.hpp"

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
