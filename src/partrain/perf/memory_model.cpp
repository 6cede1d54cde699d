#include "partrain/perf/memory_model.hpp"

#include <algorithm>
#include <memory>

#include "partrain/models/gpt.hpp"
#include "partrain/models/mlp.hpp"
#include "partrain/models/nmt.hpp"

namespace partrain::perf {

MemoryPrediction predict_memory(const StepInputs& in) {
  std::unique_ptr<models::Model<double>> m;
  if (in.model.kind == "gpt") m = std::make_unique<models::Gpt<double>>(in.model.gpt);
  else if (in.model.kind == "nmt") m = std::make_unique<models::Nmt<double>>(in.model.nmt);
  else m = std::make_unique<models::Mlp<double>>(in.model.mlp);
  m->build(0, false, false);
  const double elem = in.model.dtype == "fp64" ? 8 : 4, psi = double(m->params().numel());
  const int dp = std::max(1, in.dp), tp = std::max(1, in.tp), pp = std::max(1, in.pp);
  const double k = in.train.optimizer.kind == "sgd" ? (in.train.optimizer.momentum > 0 ? 1 : 0) : 2;
  MemoryPrediction r;
  double split = double(tp) * pp;  // model parallelism divides every state
  if (in.strategy == "nmt") split = pp;
  if (in.strategy == "ps") split = 1;
  r.params = r.grads = psi / split * elem;
  r.optimizer = k * psi / split * elem;
  if (in.strategy == "zero" && dp > 1) {
    if (in.zero_stage >= 1) r.optimizer /= dp;
    if (in.zero_stage >= 2) r.grads /= dp;
    if (in.zero_stage >= 3) r.params /= dp;
  }
  if (in.strategy == "ps") r.optimizer = 0;  // the servers hold it
  const std::int64_t local = std::max<std::int64_t>(1, in.train.global_batch / (in.strategy == "ps" ? std::max(1, in.workers) : dp));
  const auto rows = local * models::rows_per_sample(in.model);
  double act = 0;
  for (const auto& l : m->layers()) act += std::max(0.0, l->activation_elements(rows));
  act *= elem / split;
  if (in.strategy == "pp" && pp > 1) {  // the microbatches a stage keeps at once
    const double mb = std::max(1, in.microbatches);
    const double inflight = in.schedule == "gpipe" ? mb : std::min(mb, double(pp));
    act *= inflight / mb;
  }
  r.activations = act;
  return r;
}

}  // namespace partrain::perf
