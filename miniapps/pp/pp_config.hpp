// partrain-pp's configuration: the shared [model], [data], [train] keys, [dp] (gradient averaging over the stage
// replicas), [tp] (tensor parallelism inside each stage) and [pp]. Ranks = pp.degree × data-parallel × tp.degree.
#pragma once

#include "../dp/dp_config.hpp"
#include "partrain/parallel/pipeline/pipeline_trainer.hpp"

namespace partrain::pp_app {

struct Config {
  dp_app::Config base;
  int tp_degree = 1, dp_degree = 1;
  bool sequence_parallel = false;
  coll::Algo tp_algo = coll::Algo::Ring;
  int ep_degree = 1;  ///< expert parallelism among each stage's data-parallel ranks (a mixture of experts)
  coll::Algo ep_algo = coll::Algo::Auto;
  parallel::pipeline::PipelineOptions pipeline;
};

void declare_keys(Deck& deck);
/// Every check that needs no communication: InputError naming the key and value (degrees that do not divide the
/// rank count, fewer layers than chunks, microbatches that do not divide the batch or suit the schedule, ...).
Config read_config(const Deck& deck, int world_size);

}  // namespace partrain::pp_app
