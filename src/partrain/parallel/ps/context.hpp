// What a parameter-server role (server, worker, scheduler) works with: the layout, the options, the transport,
// the membership view, the liveness/coordination duties and the event log, shared by reference.
#pragma once

#include "partrain/models/model_config.hpp"
#include "partrain/parallel/ps/coordinator.hpp"

namespace partrain::parallel::ps {

struct Context {
  const Layout& layout;
  const Options& opt;
  Mailbox& mb;
  Membership& members;
  Coordinator& coord;
  std::vector<Event>& events;
  models::TrainSpec train;
  double t0 = 0;                ///< wall time at the common start
  std::int64_t first_step = 0;  ///< the first step of this run (after --resume)
  std::int64_t first_version = 0;  ///< the servers' update count when the run started
  bool dump = false;            ///< keep the last synchronous update's inputs for --dump-state
  std::string model_name, config_toml;  ///< recorded in checkpoints
  int rank() const { return mb.rank(); }
  double now() const;
  /// Loops poll → handler until `done()` or an exit; for the silent (stalled) state: nothing but exit matters.
  void stall_until_exit();
  bool exit_seen = false;
};

}  // namespace partrain::parallel::ps
