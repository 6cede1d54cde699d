// A machine profile: what the performance model needs to know about a machine — the rate of its gemms by shape
// class, its memory bandwidth, and α, β of each collective algorithm and operation within a node and between nodes.
// partrain-calibrate measures one (a TOML file); hand-written ones for published systems live in inputs/machines/,
// each figure with its source in a comment. TOML rather than HDF5: a profile is small, is read and edited by people,
// and is diffed in review.
#pragma once

#include <string>
#include <vector>

#include "partrain/perf/collective_model.hpp"

namespace partrain::perf {

struct CollectiveFit {
  std::string algo, op;     ///< "ring", "allreduce", …
  std::string scope;        ///< "intra" (ranks of one node) or "inter" (between nodes)
  int ranks = 0;            ///< the rank count it was measured at (0: hand-written)
  double min_bytes = 0, max_bytes = 0;  ///< the message sizes it holds for, [min, max) (0, 0: all)
  LinkParams link;
  double fit_error = 0;     ///< median relative error of the fit over the measured sizes
};

struct MachineProfile {
  std::string name, source;
  int ranks_per_node = 1;
  int cores_per_node = 0;  ///< cores the calibration's ranks could use (0: unknown); more ranks than that share them
  /// fp32 gemm rate of one rank (FLOP/s) by the geometric mean side of the product: ≤ 96 ("tiny"), ≤ 192 ("small"),
  /// ≤ 768 ("medium"), larger; and "thin": any dimension ≤ 32 (an LSTM's per-time-step products over a batch of 16,
  /// and its weight gradients summed over that batch). A profile without gemm_tiny uses gemm_small; without
  /// gemm_thin, the class of the side.
  double gemm_tiny = 0, gemm_small = 0, gemm_medium = 0, gemm_large = 0, gemm_thin = 0;
  /// A thin product's part that does not scale with its rows: seconds per byte of the weight operand, per call (the
  /// BLAS packs the weight, or reads and writes its gradient, whatever the batch); with it, gemm_thin is the rate of
  /// the rest. 0: unknown (gemm_thin then stands for the whole product at the calibration's batch of 16).
  double thin_s_per_B = 0;
  /// The half-precision (fp16/bf16, tensor-core) gemm rates by the same classes, for mixed-precision what-if
  /// predictions and train.precision runs (partrain-calibrate measures the bf16 gemm partrain runs); 0: the profile
  /// has none (profiles calibrated before mixed precision ran).
  double gemm_half_small = 0, gemm_half_medium = 0, gemm_half_large = 0;
  double memory_Bps = 0;  ///< one rank's streaming rate (bytes read + written per second), every rank at once
  double reduce_Bps = 0;  ///< one rank's a += b rate over its bytes of b (γ = 1 / reduce_Bps)
  double pointwise_eps = 0;  ///< fp32 elements per second of a pointwise kernel (GELU forward); 0: memory-bound
  /// The same on bf16 elements (computed in fp32, stored in 16 bits: what mixed precision's pointwise kernels cost);
  /// 0: the profile has none, and mixed precision's pointwise kernels are priced memory-bound on 2-byte elements.
  double pointwise_half_eps = 0;
  double adam_pps = 0;       ///< parameters per second of the Adam(W) step; 0: memory-bound
  double sgd_pps = 0;        ///< parameters per second of the SGD step; 0: memory-bound
  double adagrad_pps = 0;    ///< parameters per second of the AdaGrad step; 0: Adam's rate (a profile without it)
  double lstm_ups = 0;       ///< hidden units per second of an LSTM cell's pointwise work, forward + backward; 0: unknown
  double lstm_forward_ups = 0;  ///< the same, forward alone (5 transcendentals a unit against the backward's 1); 0: half
  /// FLOP/s of the GPT's causal attention kernel, forward and backward (12·B·T²·C FLOPs: its products with one side
  /// the head width d, the T × T softmax, the head copies), at T = 512, d = 64; 0: unknown (its products then at the
  /// gemm class rate and its probabilities through the pointwise kernel)
  double attention_fps = 0;
  /// The same for ring attention's block kernels (kernels/block_attention.hpp: the online softmax forward, the
  /// backward recomputing the scores), counted as 12·c²·d per c × c block pair, at c = 256, d = 64; 0: unknown (the
  /// blocks then at attention_fps)
  double block_attention_fps = 0;
  std::vector<CollectiveFit> collectives;

  /// The gemm rate for an m×n×k product (the class of its geometric mean side); `half`: the half-precision rate.
  double gemm_rate(double m, double n, double k, bool half = false) const;
  bool has_half() const { return gemm_half_small > 0 && gemm_half_medium > 0 && gemm_half_large > 0; }
  /// The fit for (algo, op, scope) at a message of `bytes` (< 0: any size): the one whose size range holds it, else
  /// the nearest range; nullptr when the profile has none.
  const CollectiveFit* find(const std::string& algo, const std::string& op, const std::string& scope,
                            double bytes = -1) const;
};

/// Reads a profile; InputError naming `key` (the flag that gave the path) on a missing file, a TOML error or a
/// missing/invalid entry.
MachineProfile read_profile(const std::string& key, const std::string& path);
/// The profile as TOML (comments say what each figure is).
std::string to_toml(const MachineProfile& p);

}  // namespace partrain::perf
