// A parameter-server worker: it holds the whole model, pulls the parameters, computes the gradient of its data
// slice and pushes it, clock after clock.
//
//   data     bsp, half_sync: clock c is global step c, split among the workers that are members at c (docs/ps.md);
//            asp, ssp: a pull from shard 0 hands out a ticket t, global step t / W, slice t mod W of the initial
//            split — every (step, slice) is computed once over the run, by whichever worker is free, so async runs
//            see exactly the data bsp sees; local: rounds of ps.local_steps steps, split like bsp.
//   overlap  a layer's forward waits only for its own pieces of the pull; a layer's gradient pieces are sent when
//            its backward is done, while the layers before it are still computing.
//   joining  a spare (ps.spares) idles, announced to the coordinator, until it is a worker from clock K (planned, or
//            admitted in place of a removed worker): it pulls the parameters of clock K and takes its slice of
//            every clock from K on (the clock's split is over the workers that are members at it).
//   failure  a server promoted to a shard's primary gets the pulls that were unanswered and (with backups) the
//            pushes whose update the worker has not yet seen again; a worker removed at clock e is replaced by
//            the others: each computes its share of the removed worker's slice of clock e (a supplement) and the
//            split of later clocks is over the remaining workers.
#pragma once

#include <deque>

#include "partrain/models/model.hpp"
#include "partrain/models/optimizer.hpp"
#include "partrain/parallel/ps/context.hpp"
#include "partrain/parallel/trainer.hpp"

namespace partrain::parallel::ps {

/// One mini-batch a worker computed.
struct WorkItem {
  std::int64_t step = 0, clock = 0;
  double loss_sum = 0, rows = 0;
  double t_done = 0;  ///< seconds since the common start when its push was posted
  bool supplement = false;
};

template <class T>
class Worker {
 public:
  Worker(Context& cx, models::Model<T>& model, const models::Dataset<T>& data);
  ~Worker();
  void run();

  /// Every mini-batch computed (supplements included), in order.
  const std::vector<WorkItem>& items() const { return items_; }
  /// This worker's step records (one per own mini-batch: time and phases).
  const std::vector<StepRecord>& records() const { return records_; }
  double wait_s() const { return wait_s_; }
  std::int64_t pushes() const { return pushes_; }
  /// Samples pushed in contributions the servers keep (the removed worker's later pushes excluded).
  std::int64_t samples_pushed() const;
  bool stalled() const { return stalled_; }
  /// Mini-batches the delayed buffer held back instead of pushing at once.
  std::int64_t holds() const { return holds_; }
  /// Own pushes the servers keep (a removed worker's from its removal clock on are dropped).
  std::int64_t pushes_kept() const;

 private:
  struct Pull {
    bool requested = false, replied = false;
    std::int64_t clock = 0, pushes = 0, version = 0, removals = 0, fastest = 0;
    bool ticket = false;
    double ticket_value = -1;
    double loss_scale = 1;  ///< fp16: the shard's scale in its reply
  };
  struct Sent {  // a push whose update the worker has not yet seen (kept to send again after a promotion)
    int shard;
    Header h;
    std::vector<T> data;
    std::vector<int> dests;  ///< where it went: the memory stays until those sends are complete
  };
  void pump();
  void handle(int from, const Header& h);
  template <class Pred>
  void wait_for(Pred done);
  void pull_all(std::int64_t clock, bool ticket);
  void send_pull(int j);
  void wait_replies();
  void wait_layer(std::size_t l);
  void wait_all_pieces();
  void piece_arrived(int p);
  /// Forward, backward and push of samples [first, first+count) of `step`; returns the loss sum.
  double compute(std::int64_t step, std::int64_t first, std::int64_t count, std::int64_t clock, int kind,
                 StepRecord* rec, bool push = true);
  void send_push_header(int j, std::int64_t clock, std::int64_t step, std::int64_t first, std::int64_t count, int kind,
                        std::int64_t steps = 1, std::int64_t version_read = -1);
  /// The delayed buffer (asp): pushes what it holds as one update.
  void flush_delayed();
  void send_push_piece(int p);
  void resend(int j);
  void supplements(std::int64_t clock);
  void delays(std::int64_t clock);
  void finish();
  /// Done: tells the coordinator and the servers (when `tell`), then answers until the run is over.
  void say_done(bool tell);
  /// A spare waits until it joins: false when the run ended first.
  bool standby();
  void run_sync();
  void run_async();
  void run_local();

  Context& cx_;
  models::Model<T>& model_;
  const models::Dataset<T>& data_;
  Kokkos::View<T*, Kokkos::HostSpace> hparams_, hgrads_, base_, delta_, held_;
  bool alias_ = true;
  T* push_src_ = nullptr;  ///< host buffer the current push reads (gradients, or local mode's parameter change)
  std::vector<Pull> pull_;
  std::vector<int> piece_id_;
  std::vector<char> piece_ready_;
  std::vector<std::deque<Sent>> unseen_;
  std::deque<Sent> retired_;  ///< seen, but still being sent (to a server that went silent: until the drain)
  std::vector<char> resend_;
  std::vector<std::int64_t> push_target_;
  std::vector<std::pair<int, std::int64_t>> supp_pending_;  ///< (removed worker, clock) still to supplement
  std::unique_ptr<models::Optimizer<master_t<T>>> local_opt_;  ///< local mode (fp32 models only)
  models::Batch<T> batch_, supp_batch_;
  typename models::Model<T>::Workspace ws_, supp_ws_;
  std::int64_t pushes_ = 0, samples_ = 0;
  std::vector<std::pair<std::int64_t, std::int64_t>> pushed_;  ///< (clock, samples) of own pushes
  std::vector<WorkItem> items_;
  std::vector<StepRecord> records_;
  double wait_s_ = 0, phase_wait_ = 0;
  double loss_scale_ = 1;  ///< fp16: what the mini-batch being computed scales its loss by (the smallest shard's)
  bool in_backward_ = false, removed_ = false, stalled_ = false, done_ = false;
  std::int64_t cur_clock_ = 0;
  bool standby_ = false;         ///< a spare not yet a worker
  std::int64_t joined_at_ = 0;   ///< the clock a spare joined at
  // The delayed buffer: mini-batches held, their samples, the versions the first of them read, and the mini-batches
  // this worker has computed in all.
  std::int64_t held_steps_ = 0, held_samples_ = 0, held_step_ = 0, held_first_ = 0, steps_done_ = 0, holds_ = 0;
  std::vector<std::int64_t> held_version_;
};

extern template class Worker<float>;
extern template class Worker<double>;
extern template class Worker<bf16>;
extern template class Worker<fp16>;

}  // namespace partrain::parallel::ps
