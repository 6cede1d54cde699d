#include "partrain/perf/memory_model.hpp"

#include <algorithm>
#include <memory>

#include "partrain/models/model_config.hpp"
#include "partrain/parallel/zero/estimator.hpp"

namespace partrain::perf {

MemoryPrediction predict_memory(const StepInputs& in) {
  auto gpt = in.model.gpt;
  if (in.strategy == "ep" && gpt.moe.enabled()) {  // a rank holds its E/ep experts of every MoE block
    gpt.expert_first = 0;
    gpt.expert_count = gpt.moe.experts / std::max(1, in.ep);
  }
  auto spec = in.model;
  spec.gpt = gpt;
  const bool hybrid = in.strategy == "ps" && in.ps_hybrid && spec.kind == "sparse_mlp";
  const int workers = std::max(1, in.workers);
  if (hybrid)  // a worker's tables hold the rows its share can touch (parallel/ps/hybrid_trainer.hpp)
    spec.sparse.rows = (in.train.global_batch + workers - 1) / workers * spec.sparse.bag;
  auto m = models::make_layers<double>(spec);
  m->build(0, false, false);
  const bool half = is_half(in.model.dtype);
  const double elem = in.model.dtype == "fp64" ? 8 : half ? 2 : 4, psi = double(m->params().numel());
  const int dp = std::max(1, in.dp), tp = std::max(1, in.tp), pp = std::max(1, in.pp);
  MemoryPrediction r;
  double split = double(tp) * pp;  // model parallelism divides every state
  if (in.strategy == "nmt") split = pp;
  if (in.strategy == "ps") split = 1;
  // the model states by the ZeRO paper's shares (the estimator partrain-zero --estimate prints): fp32 4 + 4 + KΨ,
  // mixed precision 2 + 2 + KΨ with the master copy in K; fp64 twice fp32's
  parallel::zero::EstimateInput e;
  e.psi = psi / split;
  e.stage = in.strategy == "zero" && dp > 1 ? in.zero_stage : 0;
  e.nd = dp;
  e.precision = half ? "mixed" : "fp32";
  e.optimizer = in.train.optimizer.kind;
  e.momentum = in.train.optimizer.momentum;
  const auto states = parallel::zero::estimate(e);
  const double scale = elem == 8 ? 2.0 : 1.0;
  r.params = states.params * scale;
  r.grads = states.grads * scale;
  r.optimizer = states.optimizer * scale;
  if (in.strategy == "ps") r.optimizer = 0;  // the servers hold it
  if (hybrid) {  // the workers keep the dense parameters' optimizer state, the servers the rows'
    e.psi = psi - double(spec.sparse.table_numel());
    r.optimizer = parallel::zero::estimate(e).optimizer * scale;
  }
  const std::int64_t local = std::max<std::int64_t>(1, in.train.global_batch / (in.strategy == "ps" ? std::max(1, in.workers) : dp));
  const auto rows = local * models::rows_per_sample(in.model);
  double act = 0;
  for (const auto& l : m->layers()) act += std::max(0.0, l->activation_elements(rows));
  act *= elem / split;
  const int cp = in.strategy == "tp" ? std::max(1, in.cp) : 1;
  if (cp > 1 && in.model.kind == "gpt") {
    // context parallelism: every activation ∝ the rank's T/cp tokens (Ulysses' attention probabilities too: the whole
    // sequence for H/cp heads); ring attention keeps no T × T probabilities at all, only a log-sum-exp per query
    act /= cp;
    const auto& g = in.model.gpt;
    if (in.cp_kind == "ring")
      act -= double(g.layers) * double(local) * double(g.heads) * double(g.seq_len) * double(g.seq_len) * elem / (tp * cp);
  }
  if (in.strategy == "pp") {  // the microbatches a stage keeps at once
    const double mb = std::max(1, in.microbatches);
    const double inflight = pp == 1 ? 1.0 : in.schedule == "gpipe" ? mb : std::min(mb, double(pp));
    act *= inflight / mb;
    // recomputation keeps only each microbatch's stage input (its rows × the model's width) and, while one
    // microbatch runs its backward, that microbatch's activations
    if (in.recompute) {
      const double width = in.model.kind == "gpt" ? double(in.model.gpt.channels) : 0.0;
      act = act / inflight + inflight * double(rows) / mb * width * elem;
    }
  }
  r.activations = act;
  return r;
}

}  // namespace partrain::perf
