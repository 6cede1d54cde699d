// partrain-zero's configuration: the shared [model], [data], [train] keys and [zero].
#pragma once

#include "partrain/core/config.hpp"
#include "partrain/models/model_config.hpp"
#include "partrain/parallel/zero/zero_trainer.hpp"

namespace partrain::zero_app {

struct Config {
  models::ModelSpec model;
  models::TrainSpec train;
  parallel::zero::ZeroOptions zero;
  int pure_comm_reps = 5;
};

void declare_keys(Deck& deck);
/// Every check that needs no communication: InputError naming the key and value (a batch that does not divide by
/// the ranks, more ranks than parameters, an unusable offload directory, ...).
Config read_config(const Deck& deck, int world_size);
/// Parameters of the model the spec describes (counted from the declarations, nothing allocated).
std::int64_t parameter_count(const models::ModelSpec& spec);

}  // namespace partrain::zero_app
