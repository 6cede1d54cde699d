// partrain-ps's trainer: the roles of layout.hpp on the ranks of the job, run once for the whole training
// (lockstep() is false — servers, workers and the scheduler each run their own loop), then the run's measurements
// gathered: the loss of every global step and the wall time at which its last contribution was computed, the
// staleness of every applied update, updates and samples per second, each worker's wait, the events.
#pragma once

#include <memory>

#include "partrain/models/model.hpp"
#include "partrain/parallel/ps/server.hpp"
#include "partrain/parallel/ps/worker.hpp"
#include "partrain/parallel/trainer.hpp"

namespace partrain::parallel::ps {

template <class T>
class PsTrainer : public Trainer<T> {
 public:
  using BeforeUpdate = typename Trainer<T>::BeforeUpdate;

  /// `model`: layers only; workers allocate it whole, servers only its declarations. Collective over `world`.
  PsTrainer(models::Model<T>& model, std::uint64_t seed, const models::Dataset<T>& data, const models::TrainSpec& spec,
            coll::MpiCommunicator& world, const Options& opt, std::string model_name, std::string config_toml);
  ~PsTrainer() override;

  bool lockstep() const override { return false; }
  RunResult run(std::int64_t steps, const BeforeUpdate& at_end) override;
  StepRecord step(std::int64_t, const BeforeUpdate&) override;
  std::string describe() const override;
  std::vector<io::NamedTensor> gather_full(bool grads) override;
  std::vector<std::pair<std::string, bool>> self_check() override;
  coll::Counters counters() const override { return ps_->counters(); }
  std::vector<std::string> exposed_comm_phases() const override { return {"wait_pull"}; }
  std::string step_note(const StepRecord& rec) const override;
  NamedFigures summary(const RunMedians& m) override;
  std::vector<io::ExtraDataset> datasets() override;
  NamedStrings attributes() const override;
  std::vector<std::string> summary_lines() const override;

 private:
  void resume();
  void gather_results();

  models::Model<T>& model_;
  std::uint64_t seed_;
  coll::MpiCommunicator& world_;
  Options opt_;
  std::string model_name_, config_toml_;
  std::unique_ptr<coll::MpiCommunicator> ps_, servers_;
  std::unique_ptr<Layout> layout_;
  std::unique_ptr<Mailbox> mb_;
  std::unique_ptr<Membership> members_;
  std::vector<Event> events_;
  std::unique_ptr<Coordinator> coord_;
  std::unique_ptr<Context> cx_;
  std::unique_ptr<Server<T>> server_;
  std::unique_ptr<Worker<T>> worker_;
  Role role_;
  // Gathered at the end (every rank).
  std::int64_t first_step_ = 0, first_version_ = 0;
  std::vector<double> loss_, t_done_, rows_;
  std::vector<double> worker_wait_, worker_units_, worker_samples_, worker_pushes_;
  std::vector<double> staleness_, shard_versions_;
  std::vector<double> event_rows_;
  std::string event_text_, resumed_from_;
  double wall_s_ = 0, samples_ = 0, updates_ = 0, max_gap_ = 0, bound_waits_ = 0, discarded_ = 0, checkpoints_ = 0;
  double skipped_ = 0, final_scale_ = 1;  ///< fp16: shard updates skipped, the smallest shard scale at the end
  double delayed_holds_ = 0;  ///< mini-batches the workers' delayed buffers held back (summed)
  double removed_ = 0, promotions_ = 0, takeovers_ = 0, joined_ = 0, expected_updates_ = 0;
  bool workers_agree_ = true;
};

extern template class PsTrainer<float>;
extern template class PsTrainer<double>;
extern template class PsTrainer<bf16>;
extern template class PsTrainer<fp16>;

}  // namespace partrain::parallel::ps
