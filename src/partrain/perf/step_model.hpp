// The model of a training step from the deck and a machine profile (docs/model.md):
//   compute    per layer, by roofline: its FLOPs at the profile's gemm rate for the model's shape class, or its
//              activation traffic at the memory rate, whichever is slower; backward twice the forward
//   optimizer  a streaming pass over its state (bytes per parameter by optimizer) at the memory rate
//   collectives each by its algorithm's α-β-γ cost (collective_model.hpp) with the profile's fitted α, β: the
//              bucketed gradient allreduce (overlapped with the backward but its last bucket), tensor parallelism's
//              2 + 2 allreduces per block, ZeRO's reduce-scatter and gathers, the pipeline's point-to-point
//   pipeline   the schedule's bubble (parallel/pipeline/schedule.hpp's formula) stretches the compute
//   NMT        the LSTMs per time step (thin gemms, their weights' part per call, the cells' rates), the attention loop;
//              the fill and drain of the wavefront's schedule (parallel/nmt/wavefront.hpp) with those costs in seconds
//   experts    expert parallelism: the busiest expert rank's compute and four all-to-alls per MoE block
//   precision  a model of dtype fp16 or bf16 (train.precision of partrain-ref and -dp, or partrain-predict --precision) is
//              priced as mixed-precision training as Megatron-LM and DeepSpeed run it: gemms at the profile's
//              gemm_half_* rates, activations, tensor/pipeline messages and gradients of 2 bytes, the pointwise kernels
//              memory-bound on 2-byte elements, the optimizer on fp32 master weights (30 bytes per parameter)
// Predictions are stored as predicted_* beside the measured figures; docs/model.md's error table says how far apart.
#pragma once

#include <string>

#include "partrain/models/model_config.hpp"
#include "partrain/perf/profile.hpp"

namespace partrain::perf {

/// fp16 and bf16: mixed-precision training (above).
inline bool is_half(const std::string& dtype) { return dtype == "fp16" || dtype == "bf16"; }

struct StepInputs {
  std::string strategy = "dp";  ///< serial | dp | tp | pp | zero | nmt | ps | ep
  models::ModelSpec model;
  models::TrainSpec train;
  int dp = 1, tp = 1, pp = 1;   ///< replicas, tensor-parallel degree, pipeline stages (nmt: model_parallel in pp)
  int ranks_per_node = 0;       ///< 0: every rank on one node
  int ranks_on_node = 1;        ///< ranks sharing a node's cores (more than the profile's cores: each runs slower)
  std::string algo = "ring";    ///< the gradient allreduce's resolved algorithm
  double bucket_bytes = 4 << 20;
  bool overlap = true;
  bool grad_reduce_fp32 = false;  ///< dp.grad_reduce_dtype = "fp32" on a 16-bit model: 4-byte gradients on the wire
  std::string tp_algo = "ring";
  bool sequence_parallel = false;
  std::string schedule = "1f1b";  ///< gpipe | 1f1b | interleaved | zb
  int microbatches = 1, chunks = 1;
  bool recompute = false;       ///< pp: every stage recomputes its forward in the backward (tensor collectives too)
  int zero_stage = 0;
  bool prefetch = true;
  std::int64_t time_chunk = 4;  ///< nmt
  int servers = 1, workers = 1; ///< ps
  std::string ps_mode = "bsp";
  bool ps_hybrid = false;       ///< ps.hybrid: sparse rows on the servers, the dense layers allreduced
  int ep = 1;                   ///< ep: ranks sharing each MoE block's experts (dp = every rank)
  std::string a2a_algo = "ring";  ///< the token all-to-alls' algorithm (pairwise exchange)
  /// ep: the busiest expert rank's rows over the balanced share (a run's expert_rank_load_imbalance); 0: the bound
  /// the capacity sets, min(capacity_factor, ep)
  double moe_imbalance = 0;
  int cp = 1;                   ///< tp: context-parallel degree (ranks splitting every sequence; dp = ranks / (t·cp))
  std::string cp_kind = "ring";   ///< ring | ulysses
  std::string cp_algo = "ring";   ///< Ulysses' all-to-alls
};

struct StepPrediction {
  double forward_s = 0, backward_s = 0, optimizer_s = 0;
  double bubble_s = 0;         ///< pipeline or wavefront idle on the critical path
  double comm_pure_s = 0;      ///< every collective of the step, alone
  double comm_exposed_s = 0;   ///< what the step waits for
  double step_s = 0;
  double sparse_rows = 0;      ///< hybrid parameter server: distinct rows a worker pulls per step (expected)
  double sparse_bytes = 0;     ///< and the bytes it sends per step (sparse exchange and dense allreduce)
  std::string note;            ///< what the model does not cover ("" when all of it)
};

/// One rank's compute for `samples` samples of the whole model (forward; backward = 2× its FLOPs and traffic);
/// `shard` divides the gemms' width for the choice of the gemm rate (tensor parallelism's narrower gemms).
StepPrediction predict_compute(const models::ModelSpec& model, std::int64_t samples, const MachineProfile& p,
                               double shard = 1);
/// The step of any strategy.
StepPrediction predict_step(const StepInputs& in, const MachineProfile& p);
/// Seconds of one collective from the profile's fit for (algo, op) in the scope a group of `group` ranks spans;
/// falls back to ring's fit, then to any fit of the operation (noted in `note`); negative when the profile has none.
double collective_seconds(const MachineProfile& p, const std::string& algo, const std::string& op, int group,
                          double bytes, bool spans_nodes, std::string* note);

}  // namespace partrain::perf
