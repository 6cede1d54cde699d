// partrain-tp's configuration: the shared [model], [data], [train] keys, [dp] (gradient averaging over the
// data-parallel replicas), [tp] and [cp] (context parallelism, docs/cp.md).
#pragma once

#include "../dp/dp_config.hpp"
#include "partrain/parallel/cp/context.hpp"

namespace partrain::tp_app {

struct Config {
  dp_app::Config base;
  int degree = 1;                  ///< tensor-parallel degree t; data-parallel degree d = ranks / t
  bool sequence_parallel = false;
  coll::Algo algo = coll::Algo::Ring;
  int cp = 1;                       ///< context-parallel degree; data-parallel degree d = ranks / (t · cp)
  parallel::CpKind cp_kind = parallel::CpKind::Ring;
  coll::Algo cp_algo = coll::Algo::Auto;  ///< Ulysses' all-to-alls
};

void declare_keys(Deck& deck, int default_degree = 2);
/// InputError when the rank count is not a multiple of t·cp, the model is not a GPT, the global batch does not divide
/// by d (and, with sequence parallelism, the local rows by t), or the sequence does not split over cp (ring: T by
/// 2·cp; Ulysses: T by cp and the heads of a tensor-parallel rank by cp).
Config read_config(const Deck& deck, int world_size);

}  // namespace partrain::tp_app
