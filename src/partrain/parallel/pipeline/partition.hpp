// Cutting a model's body layers (GPT: the transformer blocks; MLP: its linear layers) into the p·v model chunks of
// a pipeline, each a contiguous range of at least one layer. The embedding goes with the first chunk and the head
// with the last (they are not body layers), so balancing by FLOPs charges their cost to those chunks.
//   uniform   by layer count: L / chunks each, the first L mod chunks one longer
//   flops     the contiguous cut that minimises the most expensive chunk (forward FLOPs counted from the shapes,
//             dynamic programming over the cut points)
//   explicit  the given number of layers per chunk
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace partrain::parallel::pipeline {

/// [first, last) body-layer ranges, one per chunk. `counts` for the explicit cut (empty otherwise); `costs` the body
/// layers' forward FLOPs (flops mode); `first_extra`, `last_extra` the embedding's and head's.
std::vector<std::pair<int, int>> partition_layers(const std::string& mode, const std::vector<std::int64_t>& counts,
                                                  const std::vector<double>& costs, int chunks, double first_extra,
                                                  double last_extra);

}  // namespace partrain::parallel::pipeline
