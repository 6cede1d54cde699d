// partrain-dp's configuration: the shared [model], [data], [train] keys plus [dp].
#pragma once

#include "partrain/core/config.hpp"
#include "partrain/models/model_config.hpp"
#include "partrain/parallel/dp/data_parallel.hpp"

namespace partrain::dp_app {

struct Config {
  models::ModelSpec model;
  models::TrainSpec train;
  parallel::DpOptions dp;
  int pure_comm_reps = 5;
};

void declare_keys(Deck& deck);
/// Reads and validates against the rank count. `even`: the global batch must divide by it (tensor and pipeline
/// replicas, expert groups); partrain-dp gives B/n or B/n + 1 samples to each rank (parallel::share_of).
Config read_config(const Deck& deck, int world_size, bool even = true);

}  // namespace partrain::dp_app
