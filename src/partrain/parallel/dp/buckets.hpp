// Gradient buckets for data parallelism (as PyTorch DDP's reducer does, without its copies): the flat gradient
// buffer is cut, from the last layer backwards, into contiguous ranges of whole layers of at least
// `bucket_elems` elements. A bucket is ready — its gradients final — once the backward of the lowest layer in it
// has run, and its allreduce then runs IN PLACE on that range of the gradient buffer: no bucket copies, no
// extra memory beyond the collectives' scratch.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace partrain::parallel {

struct Bucket {
  std::int64_t begin = 0, end = 0;  ///< elements of the gradient buffer
  std::size_t ready_layer = 0;      ///< launch after this layer's backward
  std::int64_t size() const { return end - begin; }
};

class GradientBuckets {
 public:
  /// layer_ranges[i] = [begin, end) of layer i's parameters (empty pairs for layers without parameters).
  GradientBuckets(const std::vector<std::pair<std::int64_t, std::int64_t>>& layer_ranges, std::int64_t bucket_elems);

  const std::vector<Bucket>& buckets() const { return buckets_; }
  /// Indices of the buckets that become ready when layer `layer`'s backward is done.
  const std::vector<std::size_t>& ready_after(std::size_t layer) const { return ready_[layer]; }

 private:
  std::vector<Bucket> buckets_;
  std::vector<std::vector<std::size_t>> ready_;
};

}  // namespace partrain::parallel
