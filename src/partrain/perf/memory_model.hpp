// Memory per rank by category from the same inputs as the step model: the model states' shares of each strategy
// (tensor and pipeline parallelism divide them; ZeRO's stages shard optimizer state, then gradients, then parameters)
// and the activations of the rank's share of the batch (a pipeline stage keeps the microbatches in flight that its
// schedule allows). For partrain-predict; the mini-apps measure their own and partrain-zero has its exact estimator.
#pragma once

#include "partrain/perf/step_model.hpp"

namespace partrain::perf {

struct MemoryPrediction {
  double params = 0, grads = 0, optimizer = 0, activations = 0;  ///< bytes per rank
  double total() const { return params + grads + optimizer + activations; }
};

MemoryPrediction predict_memory(const StepInputs& in);

}  // namespace partrain::perf
