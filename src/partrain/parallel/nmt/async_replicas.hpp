// nmt.update = "async": the replicas train through partrain-ps's servers in asynchronous mode (GNMT's asynchronous
// replicas), each replica — k model-parallel ranks — one parameter-server worker.
//   ranks [0, S) are servers; replica r is ranks S + r·k … S + r·k + k − 1, and its first rank (the leader) is the
//   worker: partrain-ps's worker loop pulls the whole model into the leader (a ticket names the mini-batch) and
//   calls the model's forward_backward, which here is ReplicaModel's: the batch and the pulled parameters are
//   broadcast over the replica's group, every rank runs its part of the chunked wavefront (executor.hpp), and the
//   stages' gradients are summed into the leader's whole-model buffer, which the worker pushes.
//   The other ranks of a replica (followers) run the same steps when their leader says so, until it says stop.
// nmt.delay_buffer is partrain-ps's delayed buffer: a replica more than D mini-batches behind the fastest holds its
// gradients (up to D + 1) and pushes them together.
#pragma once

#include <array>
#include <memory>

#include "partrain/core/fault.hpp"
#include "partrain/parallel/nmt/nmt_trainer.hpp"
#include "partrain/parallel/ps/ps_trainer.hpp"

namespace partrain::parallel::nmt {

struct AsyncOptions {
  int servers = 1;
  int delay_buffer = 0;
  double heartbeat_timeout_s = 30.0;
  // the servers' checkpoints (partrain-ps's; the shared --checkpoint-* flags and --resume)
  int checkpoint_every = 0;
  std::string checkpoint_dir;
  int checkpoint_keep = 2;
  bool overwrite = false;
  std::string resume_path;  ///< the checkpoint to continue from (empty: start at step 0)
  FaultPlan faults;         ///< --inject, numbered as the servers' and leaders' communicator numbers them
};

template <class T>
class NmtAsyncTrainer : public Trainer<T> {
 public:
  using BeforeUpdate = typename Trainer<T>::BeforeUpdate;
  /// Collective over `world`.
  NmtAsyncTrainer(const models::NmtConfig& cfg, std::uint64_t seed, const models::Dataset<T>& data,
                  const models::TrainSpec& spec, coll::MpiCommunicator& world, const NmtOptions& opt,
                  const AsyncOptions& async, std::string model_name, std::string config_toml);
  ~NmtAsyncTrainer() override;

  bool lockstep() const override { return false; }
  RunResult run(std::int64_t steps, const BeforeUpdate& at_end) override;
  StepRecord step(std::int64_t, const BeforeUpdate&) override;
  std::string describe() const override;
  std::vector<io::NamedTensor> gather_full(bool) override { return {}; }
  std::vector<std::pair<std::string, bool>> self_check() override;
  coll::Counters counters() const override;
  std::vector<std::string> exposed_comm_phases() const override { return {"wait_pull"}; }
  NamedFigures summary(const RunMedians& m) override;
  std::vector<io::ExtraDataset> datasets() override;
  NamedStrings attributes() const override;
  std::vector<std::string> summary_lines() const override;

 private:
  class ReplicaModel;
  friend class ReplicaModel;
  /// One replica step (collective over the replica's group): the leader passes its mini-batch and the pulled whole
  /// parameters; the whole gradient lands in whole_grads_. Returns the replica's loss sum, −1 when told to stop.
  double replica_step(const models::Batch<T>* leader_batch, double scale, const View1<T>& whole);
  void follow();

  models::NmtConfig cfg_;
  const models::Dataset<T>& data_;
  models::TrainSpec spec_;
  coll::MpiCommunicator& world_;
  NmtOptions opt_;
  AsyncOptions async_;
  Placement pl_;
  int servers_, replica_ = -1, mp_rank_ = -1;
  std::unique_ptr<coll::MpiCommunicator> mp_, ps_comm_;
  std::unique_ptr<NmtStage<T>> stage_;
  std::unique_ptr<NmtExecutor<T>> exec_;
  std::unique_ptr<models::Model<T>> ps_model_;  ///< ReplicaModel on a leader, the declarations on a server
  std::unique_ptr<ps::PsTrainer<T>> ps_;
  ps::Options ps_opt_;
  std::vector<StepRecord> follower_records_;
  std::vector<std::array<std::int64_t, 3>> map_;  ///< stage tensor → whole-model offset
  View1<T> whole_grads_, whole_params_;
  models::Batch<T> batch_;
};

extern template class NmtAsyncTrainer<float>;
extern template class NmtAsyncTrainer<double>;
extern template class NmtAsyncTrainer<bf16>;
extern template class NmtAsyncTrainer<fp16>;

}  // namespace partrain::parallel::nmt
