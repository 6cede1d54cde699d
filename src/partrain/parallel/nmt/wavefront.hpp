// The wavefront model: what a replica's k ranks would wait for if computing were all there is. Every unit's chunk
// costs its FLOPs (an LSTM chunk 2·B·c·4U(I+U), the attention's 4·B·c·S·H, the generator's 2·N·H·V/k on every
// rank; backward twice the forward), messages cost nothing, and each rank runs the executor's order (its units in
// the global order, chunks in their direction; the reverse in backward). The makespan minus a rank's busy time is
// its fill and drain idle time; partrain-nmt reports the model's share beside the measured one. The performance model
// runs the same schedule with each chunk's cost in seconds from a machine profile (ChunkCosts).
#pragma once

#include <functional>
#include <vector>

#include "partrain/parallel/nmt/placement.hpp"

namespace partrain::parallel::nmt {

struct WavefrontModel {
  double makespan = 0;             ///< forward + backward, in FLOPs of one rank's time
  std::vector<double> busy, idle;  ///< per model-parallel rank
  double idle_share(int rank) const { return makespan > 0 ? idle[std::size_t(rank)] / makespan : 0.0; }
};

/// What a chunk of `steps` time steps of a unit costs forward and backward (in any unit: FLOPs, seconds; `input` and
/// `units` are an LSTM unit's widths, 0 for the attention), and the generator's shard forward + backward on a rank.
struct ChunkCosts {
  std::function<double(const Unit& u, double steps, double input, double units)> forward, backward;
  double generator = 0;
};

/// The FLOPs costs above: an LSTM chunk 2·B·steps·4U(I+U), the attention's 4·B·steps·S·H, backward twice.
ChunkCosts flop_costs(const models::NmtConfig& cfg, std::int64_t B, int k);

WavefrontModel wavefront_model(const models::NmtConfig& cfg, const Placement& pl, std::int64_t B, std::int64_t chunk);
WavefrontModel wavefront_model(const models::NmtConfig& cfg, const Placement& pl, std::int64_t chunk,
                               const ChunkCosts& costs);

}  // namespace partrain::parallel::nmt
