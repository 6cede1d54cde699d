// The step model's inputs from a resolved input deck (what --print-deck writes, or a result file's config_toml):
// the strategy's keys, with partrain's defaults where a key is absent, and the layout the rank count gives.
#pragma once

#include <string>

#include "partrain/core/deck_table.hpp"
#include "partrain/perf/step_model.hpp"

namespace partrain::perf {

/// `strategy`: serial, dp, tp, tp+sp, pp, zero, nmt, ps, ep (a result file's strategy attribute); `ranks`: the job's.
/// `ranks_per_node`: 0 when every rank is on one node. InputError naming the key when the layout does not fit.
StepInputs step_inputs(const DeckTable& deck, const std::string& strategy, int ranks, int ranks_per_node,
                       const models::ModelSpec& model, const models::TrainSpec& train);

}  // namespace partrain::perf
