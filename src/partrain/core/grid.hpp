// The process grid: world = pp × dp × cp × tp ranks, tensor-parallel index varying fastest, then context-parallel,
// as Megatron-Core orders them,
//   rank = ((pp_i · dp + dp_i) · cp + cp_i) · tp + tp_i,
// so a tensor-parallel group is made of neighbouring ranks (one node), and a context-parallel group next. Pure arithmetic (testable without MPI);
// collectives/process_grid.hpp builds the communicators of each group from it.
#pragma once

#include <string>

namespace partrain {

struct GridShape {
  int pp = 1, dp = 1, tp = 1, cp = 1;
  int size() const { return pp * dp * tp * cp; }
};

struct GridCoord {
  int pp = 0, dp = 0, tp = 0, cp = 0;
};

class Grid {
 public:
  /// InputError unless pp·dp·cp·tp equals the rank count and every degree is ≥ 1.
  Grid(GridShape shape, int world_size);

  const GridShape& shape() const { return shape_; }
  GridCoord coord(int rank) const;
  int rank(const GridCoord& c) const { return ((c.pp * shape_.dp + c.dp) * shape_.cp + c.cp) * shape_.tp + c.tp; }

  /// MPI_Comm_split colors and keys: ranks with the same color form one group, ordered by key.
  int tp_color(int rank) const;
  int dp_color(int rank) const;
  int pp_color(int rank) const;
  int cp_color(int rank) const;
  /// The data-parallel group with context parallelism (Megatron-Core's dp-cp group): every rank holding the same
  /// parameters — same pipeline stage and tensor-parallel index — keyed by dp_i · cp + cp_i (cp fastest).
  int dp_cp_color(int rank) const;

  /// "pp=1 dp=2 tp=2" (and " cp=2" when cp > 1)
  std::string describe() const;

 private:
  GridShape shape_;
};

}  // namespace partrain
