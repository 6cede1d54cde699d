#include "partrain/core/grid.hpp"

#include "partrain/core/error.hpp"

namespace partrain {

Grid::Grid(GridShape s, int world_size) : shape_(s) {
  if (s.pp < 1) input_error("parallel.pp", std::to_string(s.pp), "must be >= 1");
  if (s.dp < 1) input_error("parallel.dp", std::to_string(s.dp), "must be >= 1");
  if (s.tp < 1) input_error("parallel.tp", std::to_string(s.tp), "must be >= 1");
  if (s.cp < 1) input_error("parallel.cp", std::to_string(s.cp), "must be >= 1");
  if (s.size() != world_size)
    input_error("parallel", describe(), "pp x dp x cp x tp = " + std::to_string(s.size()) +
                " does not equal the rank count " + std::to_string(world_size));
}

GridCoord Grid::coord(int rank) const {
  GridCoord c;
  c.tp = rank % shape_.tp;
  c.cp = (rank / shape_.tp) % shape_.cp;
  c.dp = (rank / (shape_.tp * shape_.cp)) % shape_.dp;
  c.pp = rank / (shape_.tp * shape_.cp * shape_.dp);
  return c;
}

int Grid::tp_color(int rank) const {
  const auto c = coord(rank);
  return (c.pp * shape_.dp + c.dp) * shape_.cp + c.cp;
}
int Grid::dp_color(int rank) const {
  const auto c = coord(rank);
  return (c.pp * shape_.cp + c.cp) * shape_.tp + c.tp;
}
int Grid::pp_color(int rank) const {
  const auto c = coord(rank);
  return (c.dp * shape_.cp + c.cp) * shape_.tp + c.tp;
}
int Grid::cp_color(int rank) const {
  const auto c = coord(rank);
  return (c.pp * shape_.dp + c.dp) * shape_.tp + c.tp;
}
int Grid::dp_cp_color(int rank) const {
  const auto c = coord(rank);
  return c.pp * shape_.tp + c.tp;
}

std::string Grid::describe() const {
  return "pp=" + std::to_string(shape_.pp) + " dp=" + std::to_string(shape_.dp) + " tp=" + std::to_string(shape_.tp) +
         (shape_.cp > 1 ? " cp=" + std::to_string(shape_.cp) : "");
}

}  // namespace partrain
