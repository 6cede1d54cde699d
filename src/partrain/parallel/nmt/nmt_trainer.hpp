// partrain-nmt's trainer: replicas × k ranks. Rank w is model-parallel rank w mod k of replica ⌊w/k⌋; the replica
// trains samples [r·b, (r+1)·b) of the global batch (b = B / replicas) with the chunked wavefront of executor.hpp;
// nmt.update = "sync" sums every stage's gradients over the replicas with partrain-dp's bucketed allreduce (the loss
// is scaled by 1/(the global batch's real target tokens), so the sum is the gradient of the global mean) and each
// rank updates the parameters it holds: the whole hybrid computes the serial reference's step.
#pragma once

#include <memory>

#include "partrain/models/model_config.hpp"
#include "partrain/models/optimizer.hpp"
#include "partrain/parallel/dp/gradient_reducer.hpp"
#include "partrain/parallel/nmt/executor.hpp"
#include "partrain/parallel/precision.hpp"
#include "partrain/parallel/state.hpp"
#include "partrain/parallel/trainer.hpp"

namespace partrain::parallel::nmt {

struct NmtOptions {
  int model_parallel = 1;       ///< k
  int replicas = 1;
  std::int64_t time_chunk = 4;  ///< time steps per wavefront chunk
  DpOptions dp;                 ///< the replicas' gradient allreduce
};

template <class T>
class NmtTrainer : public Trainer<T> {
 public:
  using BeforeUpdate = typename Trainer<T>::BeforeUpdate;
  NmtTrainer(const models::NmtConfig& cfg, std::uint64_t seed, const models::Dataset<T>& data,
             const models::TrainSpec& spec, coll::MpiCommunicator& world, const NmtOptions& opt);
  ~NmtTrainer() override;

  StepRecord step(std::int64_t step, const BeforeUpdate& before_update = {}) override;
  std::string describe() const override;
  std::vector<io::NamedTensor> gather_full(bool grads) override;
  std::vector<std::pair<std::string, bool>> self_check() override;
  coll::Counters counters() const override;
  std::vector<std::string> exposed_comm_phases() const override { return {"idle", "group_comm", "replica_comm"}; }
  std::string step_note(const StepRecord& rec) const override;
  NamedFigures summary(const RunMedians& m) override;
  std::vector<io::ExtraDataset> datasets() override;
  NamedStrings attributes() const override;
  std::vector<std::string> summary_lines() const override;
  bool checkpoints() const override { return true; }
  std::vector<io::TensorPart> state_parts(bool writer) override;
  void restore_state(const std::vector<io::TensorPart>& parts, std::int64_t steps) override;
  std::int64_t optimizer_steps() const override { return opt_state_->steps_taken(); }
  NamedFigures checkpoint_numbers() const override { return scaler_numbers(*mixed_); }
  void restore_numbers(const std::map<std::string, double>& n) override { restore_scaler(*mixed_, n); }
  std::array<double, 3> predicted_state_bytes() const override {
    return model_state_bytes<T>(stage_->params().numel(), double(opt_state_->state_bytes()));
  }

 private:
  models::NmtConfig cfg_;
  const models::Dataset<T>& data_;
  models::TrainSpec spec_;
  coll::MpiCommunicator& world_;
  NmtOptions opt_;
  Placement pl_;
  int replica_ = 0, mp_rank_ = 0;
  std::unique_ptr<coll::MpiCommunicator> mp_, rep_;
  std::unique_ptr<NmtStage<T>> stage_;
  std::unique_ptr<GradientReducer<T>> reducer_;
  std::unique_ptr<NmtExecutor<T>> exec_;
  std::unique_ptr<models::Optimizer<master_t<T>>> opt_state_;
  std::unique_ptr<models::MixedPrecision<T>> mixed_;  ///< a 16-bit model's fp32 master weights and loss scaler
  PrecisionLog<T> log_;
  models::Batch<T> batch_;
  std::int64_t local_ = 0;
  std::vector<double> idle_f_, idle_b_, fwd_, bwd_, compute_;  ///< per step, this rank
  double model_idle_share_ = 0;
  std::vector<double> rank_idle_share_;  ///< gathered at the end: per rank, median idle / step
  std::unique_ptr<StateIo<master_t<T>>> state_;
};

extern template class NmtTrainer<float>;
extern template class NmtTrainer<double>;
extern template class NmtTrainer<bf16>;
extern template class NmtTrainer<fp16>;

}  // namespace partrain::parallel::nmt
