#include "partrain/parallel/zero/shards.hpp"

#include <algorithm>

#include "partrain/collectives/types.hpp"
#include "partrain/core/error.hpp"

namespace partrain::parallel::zero {

std::vector<Unit> tensor_buckets(const std::vector<TensorRange>& tensors, std::int64_t bucket_elems) {
  PARTRAIN_REQUIRE(bucket_elems > 0, "bucket size must be positive");
  std::vector<Unit> out;
  Unit cur;
  bool open = false;
  auto close = [&] {
    if (open) out.push_back(cur);
    open = false;
  };
  for (auto it = tensors.rbegin(); it != tensors.rend(); ++it) {
    if (it->size == 0) continue;
    if (it->tied) {  // alone
      close();
      out.push_back(Unit{it->offset, it->offset + it->size, {it->name}, true});
      continue;
    }
    if (!open) {
      cur = Unit{it->offset, it->offset + it->size, {it->name}, false};
      open = true;
    } else {
      PARTRAIN_REQUIRE(it->offset + it->size == cur.begin, "tensors must be contiguous in declaration order");
      cur.begin = it->offset;
      cur.tensors.insert(cur.tensors.begin(), it->name);
    }
    if (cur.size() >= bucket_elems) close();
  }
  close();
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<Unit> layer_units(const std::vector<std::vector<TensorRange>>& layer_tensors) {
  std::vector<Unit> out;
  for (const auto& ts : layer_tensors) {
    Unit cur;
    bool open = false;
    for (const auto& t : ts) {
      if (t.tied) {
        if (open) out.push_back(cur);
        open = false;
        out.push_back(Unit{t.offset, t.offset + t.size, {t.name}, true});
        continue;
      }
      if (!open) {
        cur = Unit{t.offset, t.offset + t.size, {t.name}, false};
        open = true;
      } else {
        PARTRAIN_REQUIRE(t.offset == cur.end, "a layer's tensors must be contiguous");
        cur.end = t.offset + t.size;
        cur.tensors.push_back(t.name);
      }
    }
    if (open) out.push_back(cur);
  }
  return out;
}

ShardLayout::ShardLayout(std::vector<Unit> units, int ranks, int rank)
    : units_(std::move(units)), ranks_(ranks), rank_(rank) {
  for (const auto& u : units_) {
    offset_in_unit_.push_back(coll::block_offset(u.size(), ranks, rank));
    size_.push_back(coll::block_count(u.size(), ranks, rank));
    shard_offset_.push_back(shard_size_);
    shard_size_ += size_.back();
  }
}

std::size_t ShardLayout::unit_of(std::int64_t i) const {
  auto it = std::upper_bound(units_.begin(), units_.end(), i, [](std::int64_t x, const Unit& u) { return x < u.end; });
  PARTRAIN_REQUIRE(it != units_.end() && it->begin <= i, "element outside every unit");
  return std::size_t(it - units_.begin());
}

std::size_t ShardLayout::unit_at_shard(std::int64_t i) const {
  auto it = std::upper_bound(shard_offset_.begin(), shard_offset_.end(), i);
  return std::size_t(std::max<std::ptrdiff_t>(0, (it - shard_offset_.begin()) - 1));
}

}  // namespace partrain::parallel::zero
