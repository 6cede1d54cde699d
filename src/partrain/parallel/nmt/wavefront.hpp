// The wavefront model: what a replica's k ranks would wait for if computing were all there is. Every unit's chunk
// costs its FLOPs (an LSTM chunk 2·B·c·4U(I+U), the attention's 4·B·c·S·H, the generator's 2·N·H·V/k on every
// rank; backward twice the forward), messages cost nothing, and each rank runs the executor's order (its units in
// the global order, chunks in their direction; the reverse in backward). The makespan minus a rank's busy time is
// its fill and drain idle time; partrain-nmt reports the model's share beside the measured one.
#pragma once

#include <vector>

#include "partrain/parallel/nmt/placement.hpp"

namespace partrain::parallel::nmt {

struct WavefrontModel {
  double makespan = 0;             ///< forward + backward, in FLOPs of one rank's time
  std::vector<double> busy, idle;  ///< per model-parallel rank
  double idle_share(int rank) const { return makespan > 0 ? idle[std::size_t(rank)] / makespan : 0.0; }
};

WavefrontModel wavefront_model(const models::NmtConfig& cfg, const Placement& pl, std::int64_t B, std::int64_t chunk);

}  // namespace partrain::parallel::nmt
