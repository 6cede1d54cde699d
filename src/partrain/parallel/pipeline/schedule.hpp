// Pipeline schedules as data (as PyTorch's pipelining and Megatron's schedules are): a pure function
// (kind, p, m, v, stage) -> the ordered list of actions of that stage, which one executor runs and a simulator
// checks without MPI. p stages, m microbatches per step, v model chunks per stage: model chunk c (0 … p·v−1) lives
// on stage c mod p as its local chunk c div p, so the model runs 0 → p−1 → 0 → … (Megatron's virtual pipeline).
//
//   gpipe        all m forwards, then all m backwards (GPipe, Huang et al. 2019): m microbatches in flight.
//   1f1b         PipeDream-flush (Narayanan et al. 2021): warm-up of p−s−1 forwards, a steady state of one forward
//                and one backward, a cool-down of backwards: at most p−s microbatches in flight on stage s.
//   interleaved  1F1B over v model chunks per stage (Megatron's interleaved schedule; m a multiple of p):
//                warm-up of 2(p−s−1) + (v−1)p chunk-forwards; bubble (p−1)/(v·m + p−1).
//   zb           ZB-H1 (Qi et al., "Zero Bubble Pipeline Parallelism", 2023): the backward split into B (input
//                gradient) and W (weight gradient); 1F1B's order with stage s deferring its W's by s microbatches,
//                so every stage holds p microbatches at most (1F1B's peak, on its first stage) and the deferred W's
//                fill the cool-down: with equal F, B, W times the idle time is a third of 1F1B's (for m ≥ p).
//
// Communication actions are implied by the compute ones and inserted around them: before F of a chunk that is
// not the first, RecvForward; after it, SendForward unless it is the last; before B of a chunk that is not the
// last, RecvBackward; after it, SendBackward unless it is the first. Sends never wait; a receive waits for its send.
#pragma once

#include <string>
#include <vector>

namespace partrain::parallel::pipeline {

enum class ScheduleKind { GPipe, OneFOneB, Interleaved, ZeroBubble };
enum class ActionType { Forward, Backward, Weight, RecvForward, SendForward, RecvBackward, SendBackward };

struct Action {
  ActionType type = ActionType::Forward;
  int mb = 0;     ///< microbatch
  int chunk = 0;  ///< this stage's local chunk (model chunk = chunk·p + stage)
  bool operator==(const Action& o) const { return type == o.type && mb == o.mb && chunk == o.chunk; }
};

struct ScheduleSpec {
  ScheduleKind kind = ScheduleKind::OneFOneB;
  int p = 1, m = 1, v = 1;
  int chunks() const { return p * v; }
};

const char* name(ScheduleKind k);
bool parse(const std::string& s, ScheduleKind& out);
/// "F", "B", "W", "RF", "SF", "RB", "SB"
const char* short_name(ActionType t);
bool is_compute(ActionType t);
/// True for schedules whose backward is split into B and W (zb).
bool splits_backward(ScheduleKind k);

/// An empty string when the schedule can run with these sizes, else why not (the deck key and value named).
std::string why_not(const ScheduleSpec& s);

/// The compute actions (F, B, W) of one stage, in order.
std::vector<Action> compute_order(const ScheduleSpec& s, int stage);
/// The same with the point-to-point actions they imply: what the executor runs.
std::vector<Action> schedule(const ScheduleSpec& s, int stage);
/// "F0.0 SF0.0 F1.0 ..." (type, microbatch.chunk)
std::string to_string(const std::vector<Action>& actions);

/// Costs of one whole-model-per-stage action; a chunk's action costs 1/v of it. An unsplit B is the whole backward.
struct Costs {
  double f = 1, b = 2, w = 0;
};
/// The costs that make the closed forms hold: F = 1 and a backward of 2 (B = W = 1 when split).
Costs unit_costs(const ScheduleSpec& s);

/// What running every stage's list together shows.
struct Simulation {
  bool completed = false;            ///< every list ran to its end (no deadlock)
  std::vector<std::string> errors;   ///< violated rules (empty for a valid schedule)
  double makespan = 0;               ///< time of the last action's end
  std::vector<double> busy;          ///< per stage: time computing
  std::vector<int> peak_inflight;    ///< per stage: most microbatch-chunks holding activations at once
  /// Idle share of the pipeline: 1 − Σ busy / (p · makespan).
  double bubble_fraction() const;
};

/// Runs `lists[s]` (one per stage) as-soon-as-possible with `costs`, checks every rule (each F/B/W once per
/// microbatch and chunk; F before B before W on a stage; every send matched by a receive of the same tensor; a
/// compute's input received before it; a microbatch's F on a chunk after its F on the chunk before), and records
/// the peak number of microbatch-chunks in flight (from F to B, or to W when the backward is split).
Simulation simulate(const ScheduleSpec& s, const std::vector<std::vector<Action>>& lists, const Costs& costs);
/// The schedule's own lists with unit costs.
Simulation simulate(const ScheduleSpec& s);

/// The bubble fraction by formula: (p−1)/(m+p−1) for gpipe and 1f1b, (p−1)/(v·m+p−1) for interleaved,
/// (p−1)/(3m+p−1) for zb with m ≥ p (idle (p−1)·(T_F + T_B − T_W) with equal F, B, W); the unit-cost simulation for
/// zb with m < p, where there are too few W's to fill the bubble.
double predicted_bubble_fraction(const ScheduleSpec& s);

}  // namespace partrain::parallel::pipeline
