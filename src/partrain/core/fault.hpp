// Fault injection: `--inject KIND:rank=R:step=K[:ms=D]` (repeatable), the same grammar in every mini-app that takes it.
//   kill    the rank sends itself SIGKILL at the start of step K (a node that dies: MPI takes the job down)
//   stall   the rank stops responding at step K without exiting (a hung node): it sends and answers nothing until it
//           is told the run is over
//   slow    the rank's compute is D ms slower in every step from K on (a straggler: it sleeps D ms inside the step's
//           timed region, before its forward, so the others wait for it in the step's collectives)
//   signal  the rank sends itself SIGUSR1 at the start of step K (a stop asked for at a known step: the run stops at
//           the next step boundary, as when the scheduler signals it, but at a step the tests can name)
//   join    partrain-ps only: spare rank R joins the workers from clock K; with :shard=J it joins the servers instead,
//           taking shard J over from its first owner at clock K (docs/ps.md "Joining")
// A plan is parsed identically on every rank (InputError naming the flag and value otherwise); each rank asks it
// what applies to itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace partrain {

/// The straggler's delay (`slow`) is paid inside the step: the driver plans it for the step about to run and the
/// trainer calls straggle() at the start of its timed compute, which sleeps the planned delay once.
void plan_straggle(double ms);
void straggle();

struct Fault {
  enum Kind { Kill, Stall, Slow, Signal, Join } kind = Kill;
  int rank = 0;
  std::int64_t step = 0;
  double ms = 0;  ///< slow: delay per step
  int shard = -1;  ///< join: the shard a joining server takes over (-1: the spare joins the workers)
};

class FaultPlan {
 public:
  FaultPlan() = default;
  /// Parses every --inject value; InputError ("--inject = …: why") on anything malformed or a rank ≥ world.
  FaultPlan(const std::vector<std::string>& specs, int world_size);

  const std::vector<Fault>& faults() const { return faults_; }
  bool empty() const { return faults_.empty(); }
  /// Whether `rank` is to be killed / to stall at `step`.
  bool kills(int rank, std::int64_t step) const { return match(Fault::Kill, rank, step); }
  bool stalls(int rank, std::int64_t step) const { return match(Fault::Stall, rank, step); }
  bool signals(int rank, std::int64_t step) const { return match(Fault::Signal, rank, step); }
  /// The faults of one kind (the planned joins).
  std::vector<Fault> of(Fault::Kind k) const {
    std::vector<Fault> out;
    for (const auto& f : faults_)
      if (f.kind == k) out.push_back(f);
    return out;
  }
  /// The delay `rank` adds at `step` (0 when none).
  double slow_ms(int rank, std::int64_t step) const;
  /// Sends SIGKILL to this process when the plan kills `rank` at `step`.
  void kill_if_planned(int rank, std::int64_t step) const;
  /// The same plan on another numbering of the ranks: fault rank r becomes new_rank[r] (a sub-communicator's).
  FaultPlan renumbered(const std::vector<int>& new_rank) const {
    FaultPlan p = *this;
    for (auto& f : p.faults_) f.rank = new_rank.at(std::size_t(f.rank));
    return p;
  }
  /// Sends SIGUSR1 to this process when the plan signals `rank` at `step`.
  void signal_if_planned(int rank, std::int64_t step) const;
  /// "stall:rank=1:step=5, slow:rank=2:step=0:ms=30"
  std::string describe() const;

 private:
  bool match(Fault::Kind k, int rank, std::int64_t step) const;
  std::vector<Fault> faults_;
};

}  // namespace partrain
