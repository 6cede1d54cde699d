#include "partrain/parallel/dp/buckets.hpp"

#include "partrain/core/error.hpp"

namespace partrain::parallel {

GradientBuckets::GradientBuckets(const std::vector<std::pair<std::int64_t, std::int64_t>>& layer_ranges,
                                 std::int64_t bucket_elems)
    : ready_(layer_ranges.size()) {
  PARTRAIN_REQUIRE(bucket_elems > 0, "bucket size must be positive");
  Bucket cur;
  bool open = false;
  for (std::size_t i = layer_ranges.size(); i-- > 0;) {
    const auto [a, b] = layer_ranges[i];
    if (a == b) continue;
    if (!open) {
      cur = Bucket{a, b, i};
      open = true;
    } else {
      PARTRAIN_REQUIRE(b == cur.begin, "layer parameter ranges must be contiguous and in layer order");
      cur.begin = a;
      cur.ready_layer = i;
    }
    if (cur.size() >= bucket_elems) {
      buckets_.push_back(cur);
      open = false;
    }
  }
  if (open) buckets_.push_back(cur);
  for (std::size_t k = 0; k < buckets_.size(); ++k) ready_[buckets_[k].ready_layer].push_back(k);
}

}  // namespace partrain::parallel
