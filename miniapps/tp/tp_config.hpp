// partrain-tp's configuration: the shared [model], [data], [train] keys, [dp] (gradient averaging over the
// data-parallel replicas) and [tp].
#pragma once

#include "../dp/dp_config.hpp"

namespace partrain::tp_app {

struct Config {
  dp_app::Config base;
  int degree = 1;                  ///< tensor-parallel degree t; data-parallel degree d = ranks / t
  bool sequence_parallel = false;
  coll::Algo algo = coll::Algo::Ring;
};

void declare_keys(Deck& deck, int default_degree = 2);
/// InputError when the rank count is not a multiple of t, the model is not a GPT, or the global batch does not
/// divide by d (and, with sequence parallelism, the local rows by t).
Config read_config(const Deck& deck, int world_size);

}  // namespace partrain::tp_app
