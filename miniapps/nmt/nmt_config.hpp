// partrain-nmt's configuration: the shared [model] (model.kind = "nmt"), [data], [train] keys and [nmt].
#pragma once

#include "partrain/core/config.hpp"
#include "partrain/models/model_config.hpp"
#include "partrain/parallel/nmt/async_replicas.hpp"

namespace partrain::nmt_app {

struct Config {
  models::ModelSpec model;
  models::TrainSpec train;
  parallel::nmt::NmtOptions nmt;
  parallel::nmt::AsyncOptions async;
  std::string update = "sync";
};

void declare_keys(Deck& deck);
/// Every check that needs no communication: InputError naming the key and value (another model kind, more
/// model-parallel ranks than layers, a vocabulary that does not divide, ranks that are not replicas × k, a batch that
/// does not divide by the replicas, an unknown update).
Config read_config(const Deck& deck, int world_size, bool dump_state);

}  // namespace partrain::nmt_app
