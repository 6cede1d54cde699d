// The parameter server's update rules (parallel/ps/rules.hpp) case by case: when a pull is answered, when ssp's
// bound holds it, the clock gap it records, and when the delayed buffer keeps holding. These are what make the
// modes differ; the end-to-end runs (tests/mpi/check_ps.py) check only what every arrival order guarantees.
#include <gtest/gtest.h>

#include "partrain/parallel/ps/rules.hpp"

using namespace partrain::parallel::ps;

TEST(PsRules, SynchronousModesAnswerOnceTheShardReachedTheClock) {
  for (Mode m : {Mode::Bsp, Mode::HalfSync, Mode::Local}) {
    EXPECT_FALSE(pull_verdict(m, 0, 4, 9, 9, 5, 0).answer);  // version 4 < clock 5, whatever was applied
    EXPECT_TRUE(pull_verdict(m, 0, 5, 0, 9, 5, 0).answer);
    EXPECT_FALSE(pull_verdict(m, 0, 5, 0, 9, 5, 0).held_by_bound);
    EXPECT_EQ(clock_gap(m, 9, 0), 0);  // nobody runs ahead
  }
}

TEST(PsRules, AspReadsItsOwnWritesAndIsNeverBounded) {
  EXPECT_FALSE(pull_verdict(Mode::Asp, 0, 100, 2, 3, 3, 0).answer);  // its third push not applied yet
  const auto v = pull_verdict(Mode::Asp, 0, 100, 3, 3, 50, 0);       // 50 clocks ahead of the slowest: still answered
  EXPECT_TRUE(v.answer);
  EXPECT_FALSE(v.held_by_bound);
  EXPECT_EQ(clock_gap(Mode::Asp, 50, 0), 50);
}

TEST(PsRules, SspHoldsAPullMoreThanSClocksAheadOfTheSlowest) {
  // s = 1, the slowest worker has 3 pushes applied: clocks up to 4 are answered, 5 is held
  EXPECT_TRUE(pull_verdict(Mode::Ssp, 1, 0, 4, 4, 4, 3).answer);
  const auto held = pull_verdict(Mode::Ssp, 1, 0, 5, 5, 5, 3);
  EXPECT_FALSE(held.answer);
  EXPECT_TRUE(held.held_by_bound);
  // s = 0: a worker starts clock c only after every worker pushed clock c - 1 (bsp's order, asp's reads)
  EXPECT_TRUE(pull_verdict(Mode::Ssp, 0, 0, 3, 3, 3, 3).answer);
  EXPECT_TRUE(pull_verdict(Mode::Ssp, 0, 0, 4, 4, 4, 3).held_by_bound);
  // its own pushes not applied yet: not ready, and not the bound's doing
  const auto own = pull_verdict(Mode::Ssp, 1, 0, 3, 4, 4, 3);
  EXPECT_FALSE(own.answer);
  EXPECT_FALSE(own.held_by_bound);
  // no active worker to bound by (all removed): answered
  EXPECT_TRUE(pull_verdict(Mode::Ssp, 0, 0, 9, 9, 9, kNoSlowest).answer);
  EXPECT_EQ(clock_gap(Mode::Ssp, 9, kNoSlowest), 0);
  // an answered pull's gap never exceeds s, for every state the bound lets through
  for (std::int64_t s = 0; s <= 3; ++s)
    for (std::int64_t slowest = 0; slowest <= 6; ++slowest)
      for (std::int64_t clock = 0; clock <= 12; ++clock)
        if (pull_verdict(Mode::Ssp, s, 0, clock, clock, clock, slowest).answer) EXPECT_LE(clock_gap(Mode::Ssp, clock, slowest), s);
}

TEST(PsRules, DelayedBufferHoldsWhileFarBehindAndAtMostD) {
  const std::int64_t D = 2;
  EXPECT_FALSE(keep_holding(2, 1, D));  // only D behind: push now
  EXPECT_TRUE(keep_holding(3, 1, D));   // more than D behind, holding 1: keep it
  EXPECT_TRUE(keep_holding(5, 2, D));
  EXPECT_FALSE(keep_holding(5, 3, D));  // holds D + 1 already: push them as one
  EXPECT_FALSE(keep_holding(9, 1, 0));  // D = 0: the buffer is off
}
