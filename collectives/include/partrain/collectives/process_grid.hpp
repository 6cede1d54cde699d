// Communicators for the process grid (core/grid.hpp): world, and this rank's tensor-, data-, pipeline- and
// context-parallel groups, each ordered by its index along that dimension, and the data-parallel group with context
// parallelism (the ranks holding the same parameters, ordered cp fastest; the data-parallel group itself when cp = 1).
#pragma once

#include <memory>

#include "partrain/collectives/mpi_communicator.hpp"
#include "partrain/core/grid.hpp"

namespace partrain::coll {

class ProcessGrid {
 public:
  /// Collective over `world`. InputError (identically on every rank) when the shape does not fit.
  ProcessGrid(MPI_Comm world, GridShape shape);

  const Grid& grid() const { return grid_; }
  GridCoord coord() const { return grid_.coord(world_->rank()); }
  MpiCommunicator& world() { return *world_; }
  MpiCommunicator& tp() { return *tp_; }
  MpiCommunicator& dp() { return *dp_; }
  MpiCommunicator& pp() { return *pp_; }
  MpiCommunicator& cp() { return *cp_; }
  MpiCommunicator& dp_cp() { return dp_cp_ ? *dp_cp_ : *dp_; }

 private:
  Grid grid_;
  std::unique_ptr<MpiCommunicator> world_, tp_, dp_, pp_, cp_, dp_cp_;  ///< dp_cp_: null when cp = 1
};

}  // namespace partrain::coll
