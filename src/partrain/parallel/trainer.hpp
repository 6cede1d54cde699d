// The shape every strategy has (DESIGN.md, "One driver, many trainers"): a trainer is built from a model, the data,
// the train spec, its communicators and its options; step(k) trains step k and returns what this rank measured;
// the driver in miniapps/common/ (step line, self-check, figure of merit, state dump, result file) runs any trainer.
//
// Contract of step(k): every rank of the job calls it; the data is keyed by k; `before_update` is called on every
// rank once the step's gradients are final and before the optimizer changes anything (--dump-state gathers there,
// collectively); the returned loss is the mean over the global batch and is the same on every rank.
#pragma once

#include <algorithm>

#include <array>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "partrain/collectives/counters.hpp"
#include "partrain/io/checkpoint.hpp"
#include "partrain/io/result_writer.hpp"
#include "partrain/io/state_dump.hpp"

namespace partrain::parallel {

/// A data-parallel rank's share of the global batch, as a parameter server gives its workers theirs: rank r of n
/// takes samples [first, first + count), count = B/n or B/n + 1 (the first B mod n ranks one more), so the shares are
/// the global batch in order whatever n. The loss is scaled by the global rows, so uneven shares sum to the mean.
struct Share {
  std::int64_t first = 0, count = 0;
};
inline Share share_of(std::int64_t batch, int ranks, int rank) {
  const std::int64_t q = batch / ranks, extra = batch % ranks;
  return {rank * q + std::min<std::int64_t>(rank, extra), q + (rank < extra ? 1 : 0)};
}

/// One step as this rank saw it.
struct StepRecord {
  double loss = 0;    ///< mean over the global batch (identical on every rank)
  double time_s = 0;  ///< this rank's whole step from the step's barrier (fenced; data generation excluded)
  /// Named phases in seconds (/steps/phases/<name>_s): the same names in every step of a run. A lockstep trainer
  /// records "busy": this rank's own work in the step (compute and optimizer, none of the time it waited for other
  /// ranks); the driver derives each rank's wait for the slowest ("wait_for_others") from it.
  std::vector<std::pair<std::string, double>> phases;
  void phase(const std::string& name, double seconds) { phases.emplace_back(name, seconds); }
};

/// What the driver measured, for a trainer's own summary figures.
struct RunMedians {
  double step_time_s = 0;  ///< median over timed steps per rank, then median over ranks
  std::map<std::string, double> phase_s;  ///< the same for every phase
  std::int64_t steps = 0, timed_steps = 0;
  double phase(const std::string& name) const {
    auto it = phase_s.find(name);
    return it == phase_s.end() ? 0.0 : it->second;
  }
};

/// What a trainer whose ranks do not step together (lockstep() false: the parameter server) returns from run().
struct RunResult {
  std::int64_t first_step = 0;    ///< the first step trained (> 0 after a resume)
  std::vector<double> loss;       ///< per global step from first_step: the same on every rank
  std::vector<StepRecord> mine;   ///< this rank's units of work in order (a worker's mini-batches; none on a server)
  std::vector<std::string> phase_names;  ///< the phases of a unit (the same list on every rank)
};

using NamedFigures = std::vector<std::pair<std::string, double>>;
using NamedStrings = std::vector<std::pair<std::string, std::string>>;

template <class T>
class Trainer {
 public:
  using BeforeUpdate = std::function<void(double loss)>;
  virtual ~Trainer() = default;

  /// Trains step `step` (see the contract above).
  virtual StepRecord step(std::int64_t step, const BeforeUpdate& before_update = {}) = 0;
  /// False for a strategy whose ranks run at their own pace: the driver calls run() once instead of step().
  virtual bool lockstep() const { return true; }
  /// Trains the whole run; `at_end(loss of the last step)` is called collectively at the end (--dump-state).
  virtual RunResult run(std::int64_t /*steps*/, const BeforeUpdate& /*at_end*/) { return {}; }
  /// One line for the start-up banner: layout, sizes, algorithms.
  virtual std::string describe() const = 0;
  /// Whole parameters (or gradients) under the reference's names and shapes. Collective over every rank of the
  /// job; complete on world rank 0 (other ranks may return what they hold).
  virtual std::vector<io::NamedTensor> gather_full(bool grads) = 0;
  /// IMB's t_pure: the step's communication replayed alone (0 where the strategy has none to replay). Called once
  /// after training, on every rank.
  virtual double measure_pure_comm(int /*reps*/) { return 0.0; }
  /// Strategy-specific checks after training (replicas identical, ...): name → verdict. Collective.
  virtual std::vector<std::pair<std::string, bool>> self_check() { return {}; }
  /// Everything this rank sent and received during training, by operation.
  virtual coll::Counters counters() const { return {}; }
  /// Phases whose sum is the communication a step waited for (the step line's and FOM's comm share).
  virtual std::vector<std::string> exposed_comm_phases() const { return {}; }
  /// Lines for the end-of-run summary (after the memory line), e.g. a formula beside the measurement.
  virtual std::vector<std::string> summary_lines() const { return {}; }
  /// Extra text for the step line.
  virtual std::string step_note(const StepRecord& /*rec*/) const { return ""; }
  /// Strategy figures for /summary (and predicted_<figure> beside them). Collective.
  virtual NamedFigures summary(const RunMedians& /*m*/) { return {}; }
  /// The strategy's own datasets for the result file (a timeline, a histogram). Collective; used from rank 0.
  virtual std::vector<io::ExtraDataset> datasets() { return {}; }
  /// Root attributes of the result file.
  virtual NamedStrings attributes() const { return {}; }
  // ---- checkpoints (docs/DESIGN.md "Checkpoints"; parallel/state.hpp builds the parts)
  /// Whether the strategy writes and reads checkpoints.
  virtual bool checkpoints() const { return false; }
  /// This rank's parts of the training state under the reference's names: writer — the parts it writes, values
  /// filled (replicas share or leave the writing); else every part it needs back, values empty.
  virtual std::vector<io::TensorPart> state_parts(bool /*writer*/) { return {}; }
  /// Puts back what read_checkpoint filled into state_parts(false)'s parts, and the optimizer's step count.
  virtual void restore_state(const std::vector<io::TensorPart>& /*parts*/, std::int64_t /*optimizer_steps*/) {}
  virtual std::int64_t optimizer_steps() const { return 0; }
  /// Numbers of the training state besides the tensors (the fp16 loss scaler's scale), kept in the checkpoint's
  /// metadata, and given back on resume (a checkpoint without them: the keys are absent).
  virtual NamedFigures checkpoint_numbers() const { return {}; }
  virtual void restore_numbers(const std::map<std::string, double>& /*numbers*/) {}

  /// Bytes of parameters, gradients and optimizer state the strategy's formula predicts on this rank
  /// (predicted_params_bytes, … in /summary); negative where it has no formula.
  virtual std::array<double, 3> predicted_state_bytes() const { return {-1, -1, -1}; }
};

}  // namespace partrain::parallel
