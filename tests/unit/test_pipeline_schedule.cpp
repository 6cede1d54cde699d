// Pipeline schedules as data, checked without MPI by the simulator: for every p ≤ 8, m ≤ 32, v ≤ 4 a schedule
// allows, the lists are valid (each microbatch's F, B (and W) once per chunk, F before B before W on a stage, every
// send received, inputs received before use, a microbatch's F on chunk c after its F on chunk c−1) and cannot
// deadlock; the peak number of microbatches in flight is GPipe's m, 1F1B's p − s, Megatron's figure for the
// interleaved schedule and p for ZB-H1; and with unit costs the bubble is the closed form: (p−1)/(m+p−1) for GPipe and
// 1F1B, (p−1)/(v·m+p−1) interleaved, and for zb at most a third of 1F1B's idle time (m ≥ p).
#include <gtest/gtest.h>

#include "partrain/parallel/pipeline/partition.hpp"
#include "partrain/parallel/pipeline/schedule.hpp"

using namespace partrain::parallel::pipeline;

namespace {
const ScheduleKind kAll[] = {ScheduleKind::GPipe, ScheduleKind::OneFOneB, ScheduleKind::Interleaved,
                             ScheduleKind::ZeroBubble};

std::string label(const ScheduleSpec& s) {
  return std::string(name(s.kind)) + " p=" + std::to_string(s.p) + " m=" + std::to_string(s.m) + " v=" +
         std::to_string(s.v);
}

/// Idle time per stage (makespan − busy, equal work on every stage).
double idle(const Simulation& sim) {
  double busy = 0;
  for (double b : sim.busy) busy += b;
  return sim.makespan - busy / double(sim.busy.size());
}
}  // namespace

TEST(PipelineSchedule, EveryAllowedScheduleIsValidWithTheClosedForms) {
  int checked = 0;
  for (auto kind : kAll)
    for (int p = 1; p <= 8; ++p)
      for (int m = 1; m <= 32; ++m)
        for (int v = 1; v <= 4; ++v) {
          const ScheduleSpec s{kind, p, m, v};
          if (!why_not(s).empty()) continue;
          ++checked;
          const auto sim = simulate(s);
          ASSERT_TRUE(sim.completed) << label(s) << ": " << (sim.errors.empty() ? "" : sim.errors.front());
          ASSERT_TRUE(sim.errors.empty()) << label(s) << ": " << sim.errors.front();
          const double P = p, M = m, V = v;
          for (int st = 0; st < p; ++st) {
            const int peak = sim.peak_inflight[std::size_t(st)];
            switch (kind) {
              case ScheduleKind::GPipe: EXPECT_EQ(peak, m) << label(s); break;
              case ScheduleKind::OneFOneB: EXPECT_EQ(peak, std::min(m, p - st)) << label(s) << " stage " << st; break;
              case ScheduleKind::Interleaved: {
                const int warm = v == 1 ? p - st - 1 : 2 * (p - st - 1) + (v - 1) * p;  // Megatron's warm-up
                EXPECT_EQ(peak, std::min(m * v, warm + 1)) << label(s) << " stage " << st;
                break;
              }
              default: EXPECT_LE(peak, std::min(m, p)) << label(s) << " stage " << st;  // 1F1B's peak (stage 0)
            }
          }
          const double b = sim.bubble_fraction();
          switch (kind) {
            case ScheduleKind::GPipe:
            case ScheduleKind::OneFOneB: EXPECT_NEAR(b, (P - 1) / (M + P - 1), 1e-12) << label(s); break;
            case ScheduleKind::Interleaved: EXPECT_NEAR(b, (P - 1) / (V * M + P - 1), 1e-12) << label(s); break;
            default: {
              const auto ref = simulate(ScheduleSpec{ScheduleKind::OneFOneB, p, m, 1});
              if (m >= p) {
                EXPECT_LE(idle(sim), idle(ref) / 3 + 1e-9) << label(s);
                EXPECT_NEAR(b, predicted_bubble_fraction(s), 1e-12) << label(s);
              } else {
                EXPECT_LE(idle(sim), idle(ref) + 1e-9) << label(s);  // too few W's to fill every gap
              }
            }
          }
          if (kind != ScheduleKind::ZeroBubble) EXPECT_NEAR(predicted_bubble_fraction(s), b, 1e-12) << label(s);
        }
  EXPECT_EQ(checked, 1108);  // 256 gpipe + 256 1f1b + 340 interleaved + 256 zb
}

TEST(PipelineSchedule, OneFOneBHasItsThreeSections) {
  // p = 4, stage 1: warm-up of p − s − 1 = 2 forwards, steady F/B pairs, cool-down of 2 backwards.
  const auto a = to_string(compute_order({ScheduleKind::OneFOneB, 4, 6, 1}, 1));
  EXPECT_EQ(a, "F0.0 F1.0 F2.0 B0.0 F3.0 B1.0 F4.0 B2.0 F5.0 B3.0 B4.0 B5.0");
  const auto zb = to_string(compute_order({ScheduleKind::ZeroBubble, 2, 3, 1}, 1));
  EXPECT_EQ(zb, "F0.0 B0.0 F1.0 B1.0 W0.0 F2.0 B2.0 W1.0 W2.0");  // stage 1 defers its W's by one
  const auto full = to_string(schedule({ScheduleKind::OneFOneB, 2, 2, 1}, 0));
  EXPECT_EQ(full, "F0.0 SF0.0 F1.0 SF1.0 RB0.0 B0.0 RB1.0 B1.0");
}

TEST(PipelineSchedule, TheSimulatorCatchesBrokenLists) {
  const ScheduleSpec s{ScheduleKind::OneFOneB, 2, 2, 1};
  std::vector<std::vector<Action>> lists = {schedule(s, 0), schedule(s, 1)};
  // A backward before its forward.
  auto bad = lists;
  std::swap(bad[1][1], bad[1][3]);
  EXPECT_FALSE(simulate(s, bad, unit_costs(s)).errors.empty());
  // A missing send: the receiver waits forever.
  bad = lists;
  bad[0].erase(bad[0].begin() + 1);
  auto sim = simulate(s, bad, unit_costs(s));
  EXPECT_FALSE(sim.completed);
  EXPECT_FALSE(sim.errors.empty());
  // Both stages receiving first: a deadlock.
  bad = {{{ActionType::RecvBackward, 0, 0}}, {{ActionType::RecvForward, 0, 0}}};
  EXPECT_FALSE(simulate(s, bad, unit_costs(s)).completed);
  // A microbatch that never runs its backward.
  bad = lists;
  bad[1].pop_back();
  bad[1].pop_back();
  EXPECT_FALSE(simulate(s, bad, unit_costs(s)).errors.empty());
}

TEST(PipelineSchedule, RefusesWhatItCannotRun) {
  EXPECT_NE(why_not({ScheduleKind::OneFOneB, 2, 4, 2}).find("pp.chunks = 2: only the interleaved"), std::string::npos);
  EXPECT_NE(why_not({ScheduleKind::Interleaved, 4, 6, 2}).find("pp.microbatches = 6: must be a multiple of pp.degree = 4"),
            std::string::npos);
  EXPECT_EQ(why_not({ScheduleKind::Interleaved, 4, 8, 3}), "");
}

TEST(PipelinePartition, UniformFlopsAndExplicit) {
  const std::vector<double> costs = {1, 1, 1, 1, 1, 1, 1};
  auto u = partition_layers("uniform", {}, costs, 3, 0, 0);
  EXPECT_EQ(u, (std::vector<std::pair<int, int>>{{0, 3}, {3, 5}, {5, 7}}));
  // The last chunk carries a head worth two layers: flops moves layers away from it.
  auto f = partition_layers("flops", {}, costs, 3, 0, 2);
  EXPECT_EQ(f, (std::vector<std::pair<int, int>>{{0, 3}, {3, 6}, {6, 7}}));
  auto e = partition_layers("explicit", {1, 5, 1}, costs, 3, 0, 0);
  EXPECT_EQ(e, (std::vector<std::pair<int, int>>{{0, 1}, {1, 6}, {6, 7}}));
}
