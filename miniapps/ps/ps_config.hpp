// partrain-ps's configuration: the shared [model], [data], [train] keys and [ps].
#pragma once

#include "partrain/core/config.hpp"
#include "partrain/models/model_config.hpp"
#include "partrain/parallel/ps/layout.hpp"

namespace partrain::ps_app {

struct Config {
  models::ModelSpec model;
  models::TrainSpec train;
  parallel::ps::Options ps;
};

void declare_keys(Deck& deck);
/// Every check that needs no communication: InputError naming the key (or flag) and value — ranks that leave no
/// worker, a worker count that does not add up, a straggler that is not a worker, a key of another mode, a
/// checkpoint directory holding an earlier run's checkpoints, --dump-state of an asynchronous mode, ...
/// `inject`: the --inject values; `resume`, `overwrite`, `dump_state`: the flags.
Config read_config(const Deck& deck, int world_size, const std::vector<std::string>& inject, bool resume,
                   bool overwrite, bool dump_state);

/// --resume: the newest valid checkpoint of ps.checkpoint_dir (collective over MPI_COMM_WORLD; the ones skipped are
/// reported), "" when there is none; InputError when it is another model's or another mode's.
std::string find_checkpoint(const Config& cfg);

}  // namespace partrain::ps_app
