// Process grid: Megatron ordering (tp fastest), group membership and sizes, and a collective in each group
// whose closed-form answer identifies exactly which ranks took part.
#include <gtest/gtest.h>

#include "partrain/collectives/process_grid.hpp"
#include "partrain/core/error.hpp"

using namespace partrain;
using namespace partrain::coll;

TEST(Grid, OrderingIsMegatrons) {
  const Grid g(GridShape{2, 3, 4}, 24);
  EXPECT_EQ(g.rank(GridCoord{1, 2, 3}), (1 * 3 + 2) * 4 + 3);
  for (int r = 0; r < 24; ++r) EXPECT_EQ(g.rank(g.coord(r)), r);
  EXPECT_EQ(g.coord(5).tp, 1);  // ranks 4..7 are one tp group
  EXPECT_EQ(g.tp_color(4), g.tp_color(7));
  EXPECT_NE(g.tp_color(3), g.tp_color(4));
  EXPECT_THROW(Grid(GridShape{1, 2, 2}, 6), InputError);
  EXPECT_THROW(Grid(GridShape{0, 2, 2}, 0), InputError);
}

TEST(Grid, ContextParallelIndexVariesNextAfterTensorParallel) {
  const Grid g(GridShape{2, 2, 2, 3}, 24);  // pp 2, dp 2, tp 2, cp 3
  EXPECT_EQ(g.rank(GridCoord{1, 1, 1, 2}), ((1 * 2 + 1) * 3 + 2) * 2 + 1);
  for (int r = 0; r < 24; ++r) EXPECT_EQ(g.rank(g.coord(r)), r);
  EXPECT_EQ(g.coord(2).cp, 1);  // ranks 0..5: one dp replica of stage 0, cp groups {0,2,4} and {1,3,5}
  EXPECT_EQ(g.cp_color(0), g.cp_color(4));
  EXPECT_NE(g.cp_color(0), g.cp_color(1));
  EXPECT_EQ(g.dp_cp_color(0), g.dp_cp_color(10));  // same stage and tp index: cp and dp both vary
  EXPECT_NE(g.dp_cp_color(0), g.dp_cp_color(12));  // the next stage
  EXPECT_EQ(g.describe(), "pp=2 dp=2 tp=2 cp=3");
  EXPECT_THROW(Grid(GridShape{1, 1, 2, 3}, 4), InputError);
}

TEST(ProcessGrid, GroupsHoldTheRightRanks) {
  int world = 1, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::vector<GridShape> shapes = {{1, world, 1}, {1, 1, world}, {world, 1, 1}};
  if (world == 4) shapes.push_back({1, 2, 2}), shapes.push_back({2, 1, 2}), shapes.push_back({2, 2, 1});
  if (world == 4) shapes.push_back({1, 1, 2, 2}), shapes.push_back({1, 2, 1, 2});
  if (world >= 2) shapes.push_back({1, 1, 1, world});
  for (const auto& s : shapes) {
    ProcessGrid pg(MPI_COMM_WORLD, s);
    const auto c = pg.coord();
    EXPECT_EQ(pg.tp().size(), s.tp);
    EXPECT_EQ(pg.dp().size(), s.dp);
    EXPECT_EQ(pg.pp().size(), s.pp);
    EXPECT_EQ(pg.tp().rank(), c.tp);
    EXPECT_EQ(pg.dp().rank(), c.dp);
    EXPECT_EQ(pg.pp().rank(), c.pp);
    // sum of world ranks over the tp group = Σ_t rank(pp, dp, t)
    double mine = rank, sum = 0;
    pg.tp().allreduce(&mine, &sum, 1).wait();
    double expect = 0;
    for (int t = 0; t < s.tp; ++t) expect += pg.grid().rank(GridCoord{c.pp, c.dp, t, c.cp});
    EXPECT_EQ(sum, expect) << pg.grid().describe();
    pg.dp().allreduce(&mine, &sum, 1).wait();
    expect = 0;
    for (int d = 0; d < s.dp; ++d) expect += pg.grid().rank(GridCoord{c.pp, d, c.tp, c.cp});
    EXPECT_EQ(sum, expect) << pg.grid().describe();
    EXPECT_EQ(pg.cp().size(), s.cp);
    EXPECT_EQ(pg.cp().rank(), c.cp);
    pg.cp().allreduce(&mine, &sum, 1).wait();
    expect = 0;
    for (int k = 0; k < s.cp; ++k) expect += pg.grid().rank(GridCoord{c.pp, c.dp, c.tp, k});
    EXPECT_EQ(sum, expect) << pg.grid().describe();
    EXPECT_EQ(pg.dp_cp().size(), s.dp * s.cp);
    EXPECT_EQ(pg.dp_cp().rank(), c.dp * s.cp + c.cp);  // cp fastest: a replica's ranks are neighbours
    pg.dp_cp().allreduce(&mine, &sum, 1).wait();
    expect = 0;
    for (int d = 0; d < s.dp; ++d)
      for (int k = 0; k < s.cp; ++k) expect += pg.grid().rank(GridCoord{c.pp, d, c.tp, k});
    EXPECT_EQ(sum, expect) << pg.grid().describe();
  }
}
