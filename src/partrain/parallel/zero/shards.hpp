// How ZeRO partitions the flat parameter / gradient / optimizer buffers (Rajbhandari et al., SC'20): the flat buffer
// is cut into units — contiguous ranges of whole tensors — and rank r of the Nd data-parallel ranks owns block r of
// every unit (the collectives library's blocks: the first |u| mod Nd blocks one element longer). A unit is what one
// reduce-scatter or allgather moves:
//   stages 1 and 2   gradient buckets: tensors in reverse declaration order, closed at `bucket_elems`;
//   stage 3          one unit per layer (its declared tensors), the unit ZeRO-3 gathers before the layer runs.
// A tied tensor (GPT's wte: declared by the embedding, used by the head) is a unit of its own, so that its two
// contributions to the gradient can each be reduce-scattered as soon as they are computed.
// This rank's shard is the concatenation of its blocks, unit after unit: ≈ Ψ/Nd elements.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace partrain::parallel::zero {

struct Unit {
  std::int64_t begin = 0, end = 0;  ///< elements of the flat buffer
  std::vector<std::string> tensors;  ///< names, in declaration order
  bool tied = false;                 ///< a tensor two layers write the gradient of
  std::int64_t size() const { return end - begin; }
};

/// A tensor of the flat buffer: its name, [offset, offset + size), whether it is tied.
struct TensorRange {
  std::string name;
  std::int64_t offset = 0, size = 0;
  bool tied = false;
};

/// Buckets of whole tensors, from the last tensor backwards, closed once they hold `bucket_elems` (a tied tensor is
/// always a bucket of its own). Returned in flat order.
std::vector<Unit> tensor_buckets(const std::vector<TensorRange>& tensors, std::int64_t bucket_elems);
/// One unit per layer: `layer_tensors[i]` the tensors layer i declared (in flat order); a tied tensor split off.
std::vector<Unit> layer_units(const std::vector<std::vector<TensorRange>>& layer_tensors);

class ShardLayout {
 public:
  ShardLayout() = default;
  /// `units` in flat order covering [0, Ψ); rank `rank` of `ranks`.
  ShardLayout(std::vector<Unit> units, int ranks, int rank);

  const std::vector<Unit>& units() const { return units_; }
  /// This rank's block of unit u: flat elements [block_begin, block_begin + block_size).
  std::int64_t block_begin(std::size_t u) const { return units_[u].begin + offset_in_unit_[u]; }
  std::int64_t block_offset(std::size_t u) const { return offset_in_unit_[u]; }
  std::int64_t block_size(std::size_t u) const { return size_[u]; }
  /// Where unit u's block sits in this rank's shard.
  std::int64_t shard_offset(std::size_t u) const { return shard_offset_[u]; }
  std::int64_t shard_size() const { return shard_size_; }
  /// The unit holding flat element i.
  std::size_t unit_of(std::int64_t i) const;
  /// The unit whose block holds shard element i.
  std::size_t unit_at_shard(std::int64_t i) const;
  int ranks() const { return ranks_; }
  int rank() const { return rank_; }

 private:
  std::vector<Unit> units_;
  std::vector<std::int64_t> offset_in_unit_, size_, shard_offset_;
  std::int64_t shard_size_ = 0;
  int ranks_ = 1, rank_ = 0;
};

}  // namespace partrain::parallel::zero
