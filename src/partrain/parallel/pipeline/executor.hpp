// The one executor of every pipeline schedule: it walks a stage's action list (schedule.hpp) for one step.
//   F   forward of a microbatch through a chunk (the last model chunk also scores the logits: loss and dlogits)
//   B   backward (whole, or the input-gradient half when the schedule splits it); W the weight-gradient half
//   RF / RB   wait for the activation / the output gradient (the receive was posted ahead, as soon as the list
//             shows it is next of its kind); SF / SB   post the send (from a send buffer, so compute never waits)
// Every microbatch-chunk between its F and its B (or W) holds its Activations and its input; with recomputation
// only the input is kept (the Activations return to the pool once the output is sent) and B reruns the forward
// first, so a chunk holds one set of activations at a time (more only while split backwards wait for their W). The time spent waiting on a neighbour is the measured
// bubble. Data-parallel buckets of a chunk are launched after the layers of its last microbatch's B (or W),
// and everything in flight is progressed between layers.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "partrain/parallel/dp/gradient_reducer.hpp"
#include "partrain/parallel/pipeline/model_chunk.hpp"
#include "partrain/parallel/pipeline/p2p.hpp"

namespace partrain::parallel::pipeline {

/// One action as it ran: what, and when (seconds from the start of the step).
struct TimelineEntry {
  ActionType type;
  int mb, chunk;
  double start_s, end_s;
};

/// What one step cost this stage.
struct StageStep {
  double forward_s = 0, backward_s = 0, weight_s = 0;  ///< compute (data-parallel calls between layers excluded)
  double bubble_s = 0;   ///< waiting for a neighbour's activation or gradient, and for the step's last sends
  double p2p_s = 0;      ///< posting transfers and copying into send buffers
  double span_s = 0;     ///< from the first action's start to the last one's end
  double loss_sum = 0;   ///< Σ per-row losses of the microbatches this stage scored (last model chunk only)
  double aux_sum = 0;    ///< Σ of its layers' own loss terms (MoE load balancing) over its microbatches, any stage
  int peak_inflight = 0; ///< most microbatch-chunks holding activations at once
};

template <class T>
class Executor {
 public:
  /// `chunks[j]`: local chunk j (model chunk j·p + stage); `reducers[j]` its data-parallel reducer.
  Executor(const ScheduleSpec& s, int stage, std::vector<ModelChunk<T>*> chunks,
           std::vector<GradientReducer<T>*> reducers, StageLinks<T>& links, bool recompute);

  /// Runs the stage's list over `microbatches` (m of them); loss_scale = 1/(global rows), times fp16's loss scale.
  StageStep run(const std::vector<models::Batch<T>>& microbatches, double loss_scale, double step_start_s,
                std::vector<TimelineEntry>* timeline);
  const std::vector<Action>& actions() const { return actions_; }

 private:
  using Act = typename ModelChunk<T>::Activations;
  /// A pool of same-shaped buffers, allocated on first need and reused (nothing allocated once warm).
  struct Pool {
    std::string label;
    std::int64_t rows = 0, cols = 0;
    std::vector<View2<T>> free;
    View2<T> get() {
      if (free.empty()) return View2<T>(label, rows, cols);
      auto v = free.back();
      free.pop_back();
      return v;
    }
    void put(const View2<T>& v) { free.push_back(v); }
  };
  struct InFlight {  // one microbatch-chunk between its F and its release
    Act* act = nullptr;
    View2<T> input, grad_in, dx;
  };
  struct Send {
    coll::Request req;
    View2<T> buf;
    Pool* pool;
  };
  Act* acquire(int chunk);
  void release(int chunk, Act* a);
  void post_receive(std::size_t index);
  void post_next_receives(long consumed);
  void progress();
  double wait(coll::Request& r);
  bool last_of_chunk(const Action& a) const;

  ScheduleSpec s_;
  int stage_;
  std::vector<ModelChunk<T>*> chunks_;
  std::vector<GradientReducer<T>*> reducers_;
  StageLinks<T>& links_;
  bool recompute_, split_;
  std::vector<Action> actions_;
  std::vector<int> last_mb_;  ///< per chunk: the microbatch whose B (or W) finishes the chunk's gradients
  std::vector<std::vector<std::unique_ptr<Act>>> act_all_;
  std::vector<std::vector<Act*>> act_free_;
  std::vector<Pool> input_pool_, grad_pool_, send_fwd_pool_, send_bwd_pool_;
  std::vector<View1<acc_t<T>>> losses_;  ///< per-row losses of the microbatch being scored (fp32 for a 16-bit T)
  std::map<std::pair<int, int>, InFlight> flight_;
  std::map<std::size_t, coll::Request> posted_;  ///< action index → its receive
  std::vector<Send> sends_;
  std::size_t next_recv_[2] = {0, 0};  ///< where the look-ahead for the next receive of each kind stands
  int inflight_ = 0;
};

extern template class Executor<float>;
extern template class Executor<double>;
extern template class Executor<bf16>;
extern template class Executor<fp16>;

}  // namespace partrain::parallel::pipeline
