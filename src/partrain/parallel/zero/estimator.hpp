// Per-rank memory of ZeRO before anything runs (partrain-zero --estimate): the paper's shares of the model states
// (Rajbhandari et al. 2020, §5: K bytes of optimizer state per parameter; fp32 AdamW keeps 4Ψ parameters + 4Ψ
// gradients + 8Ψ moments; mixed precision 2Ψ + 2Ψ + KΨ with K = 12: the fp32 master copy, m and v), divided by Nd
// as the stage partitions them, plus what this implementation adds: the gradient buckets and gathered layers in
// flight, the offload's staging buffer, and the activations of one rank's share of the batch (from the layers' own
// count of what they allocate).
#pragma once

#include <string>

namespace partrain::parallel::zero {

struct EstimateInput {
  double psi = 0;                 ///< parameters
  double largest_unit = 0;        ///< elements of the largest layer (stage 3 gathers it) or bucket
  double bucket_elems = 0;        ///< stages 0–2: gradient bucket size
  double activation_bytes = 0;    ///< one rank's step on its share of the batch (negative: unknown)
  int stage = 0, nd = 1;
  std::string precision = "fp32";  ///< fp32 | mixed
  std::string optimizer = "adamw";
  double momentum = 0;
  std::string offload = "none";   ///< none | host | file
  double staging_bytes = 0;       ///< the file offload's staging buffer
  bool prefetch = true;
};

struct MemoryEstimate {
  double params = 0, grads = 0, optimizer = 0;  ///< the paper's shares (in memory: the file offload moves some out)
  double buffers = 0;      ///< buckets / gathered layers in flight, staging
  double activations = 0;  ///< negative when unknown
  double model_states() const { return params + grads + optimizer + buffers; }
};

MemoryEstimate estimate(const EstimateInput& in);

}  // namespace partrain::parallel::zero
