// partrain-ep's configuration: partrain-dp's keys (every rank is a data-parallel rank) plus [ep].
#pragma once

#include "../dp/dp_config.hpp"
#include "partrain/parallel/ep/experts.hpp"

namespace partrain::ep_app {

struct Config {
  dp_app::Config base;
  int degree = 1;  ///< ep: ranks per expert group
  coll::Algo a2a_algo = coll::Algo::Auto;  ///< ep.algorithm: the token all-to-alls
};

/// `default_degree`: ep.degree when the deck does not set it (the rank count: one expert group).
void declare_keys(Deck& deck, int default_degree);
/// Reads and validates against the rank count.
Config read_config(const Deck& deck, int world_size);

}  // namespace partrain::ep_app
