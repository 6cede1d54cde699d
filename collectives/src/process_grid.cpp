#include "partrain/collectives/process_grid.hpp"

namespace partrain::coll {

namespace {
int size_of_comm(MPI_Comm c) {
  int n = 0;
  MPI_Comm_size(c, &n);
  return n;
}
}  // namespace

ProcessGrid::ProcessGrid(MPI_Comm world, GridShape shape) : grid_(shape, size_of_comm(world)) {
  world_ = std::make_unique<MpiCommunicator>(world);
  const int r = world_->rank();
  const auto c = grid_.coord(r);
  tp_ = world_->split(grid_.tp_color(r), c.tp);
  dp_ = world_->split(grid_.dp_color(r), c.dp);
  pp_ = world_->split(grid_.pp_color(r), c.pp);
  cp_ = world_->split(grid_.cp_color(r), c.cp);
  if (shape.cp > 1) dp_cp_ = world_->split(grid_.dp_cp_color(r), c.dp * shape.cp + c.cp);
}

}  // namespace partrain::coll
