// Data parallelism: every rank of the data-parallel group holds the whole model (or, with tensor parallelism inside
// the model's layers, the same shard as its group peers) and trains on its slice of the global batch: rank r of the
// group takes global samples [r·b, (r+1)·b), b = B/dp. The loss is scaled by 1/(global rows) so that the SUM of
// the ranks' gradients is the gradient of the global mean loss; the sum is the GradientReducer's bucketed allreduce,
// overlapped with the backward pass. Every rank ends the step with bit-identical gradients, so the replicated
// optimizer keeps the replicas equal (self_check verifies it).
// A 16-bit model (train.precision bf16/fp16) reduces its gradients in their own type — half the bytes — or, with
// dp.grad_reduce_dtype = fp32, widened to fp32; the optimizer keeps fp32 master weights (models::MixedPrecision).
//
// Expert parallelism (partrain-ep, docs/ep.md): with expert groups the model holds its rank's experts of every MoE
// block, its MoE layers send their tokens to the experts' ranks (AlltoallExchange), and the reducer sums the
// experts' gradients over the ranks holding them; replicas then differ in their experts, so the experts are gathered
// for dumps, written by their first holders, and checked equal over their holders. Megatron-Core and DeepSpeed-MoE
// place experts the same way: expert parallelism inside data parallelism.
//
// Context parallelism (partrain-tp with cp.degree > 1, docs/cp.md): `dp` is then the data-parallel group with context
// parallelism, its ranks ordered cp fastest; each run of cp neighbours is one replica sharing its samples (each rank
// holding T/cp tokens of every sequence), and the reducer sums the gradients over all of them.
#pragma once

#include "partrain/models/trainer.hpp"
#include "partrain/parallel/dp/gradient_reducer.hpp"
#include "partrain/parallel/cp/context_attention.hpp"
#include "partrain/parallel/ep/expert_exchange.hpp"
#include "partrain/parallel/ep/experts.hpp"
#include "partrain/parallel/ep/moe_log.hpp"
#include "partrain/parallel/precision.hpp"
#include "partrain/parallel/state.hpp"
#include "partrain/parallel/tp/mappings.hpp"
#include "partrain/parallel/trainer.hpp"

namespace partrain::parallel {

template <class T>
class DataParallelTrainer : public Trainer<T> {
 public:
  using BeforeUpdate = typename Trainer<T>::BeforeUpdate;

  /// `tp`: the model's tensor-parallel context when its layers are sharded (partrain-tp), else null. `model_seed`:
  /// the model's seed, from which mixed precision takes its fp32 master weights. `ep`: expert groups inside the
  /// data-parallel group (the model built with this rank's experts), else null.
  DataParallelTrainer(models::Model<T>& model, const models::Dataset<T>& data, const models::TrainSpec& spec,
                      coll::MpiCommunicator& dp, const DpOptions& opts, TpContext* tp = nullptr,
                      std::optional<std::uint64_t> model_seed = std::nullopt, const EpGroups* ep = nullptr);

  StepRecord step(std::int64_t step, const BeforeUpdate& before_update = {}) override;
  std::string describe() const override;
  std::vector<io::NamedTensor> gather_full(bool grads) override;
  double measure_pure_comm(int reps) override;
  std::vector<std::pair<std::string, bool>> self_check() override;
  coll::Counters counters() const override { return counters_; }
  std::vector<std::string> exposed_comm_phases() const override;
  std::string step_note(const StepRecord& rec) const override;
  NamedFigures summary(const RunMedians& m) override;
  NamedStrings attributes() const override;
  std::array<double, 3> predicted_state_bytes() const override;
  bool checkpoints() const override { return true; }
  std::vector<io::TensorPart> state_parts(bool writer) override;
  void restore_state(const std::vector<io::TensorPart>& parts, std::int64_t steps) override;
  std::int64_t optimizer_steps() const override { return opt_.steps_taken(); }
  NamedFigures checkpoint_numbers() const override;
  void restore_numbers(const std::map<std::string, double>& numbers) override;
  std::vector<io::ExtraDataset> datasets() override;

  const GradientBuckets& buckets() const { return reducer_.buckets(); }
  /// The last step's bucket launches (GradientReducer::launches).
  const std::vector<std::pair<std::size_t, std::int64_t>>& bucket_launches() const { return reducer_.launches(); }
  std::int64_t local_samples() const { return local_; }
  std::int64_t predicted_bytes_per_step() const { return reducer_.predicted_bytes_per_step(); }
  models::Optimizer<master_t<T>>& optimizer() { return opt_; }

 private:
  /// The exchange the MoE layers use (expert parallelism), attached before the workspace holds their states.
  static std::unique_ptr<AlltoallExchange<T>> attach_exchange(models::Model<T>& model, const EpGroups* ep);
  /// This rank's samples: its replica's share, a replica being cp neighbours of the group (context parallelism).
  static Share replica_share(const models::TrainSpec& spec, const coll::MpiCommunicator& dp, const TpContext* tp);
  /// The context-parallel attention of every block (empty without context parallelism).
  std::vector<ContextAttention<T>*> context_attentions() const;
  std::int64_t expert_first() const;

  models::Model<T>& model_;
  const models::Dataset<T>& data_;
  models::TrainSpec spec_;
  coll::MpiCommunicator& dp_;
  DpOptions opts_;
  TpContext* tp_;
  EpGroups ep_;
  std::unique_ptr<AlltoallExchange<T>> exchange_;
  MoeLog<T> moe_log_;
  models::Optimizer<master_t<T>> opt_;
  models::MixedPrecision<T> mixed_;
  PrecisionLog<T> log_;
  std::int64_t local_ = 0, first_ = 0;
  models::Batch<T> batch_;
  typename models::Model<T>::Workspace ws_;
  GradientReducer<T> reducer_;
  coll::Counters counters_;  ///< training traffic (frozen before the t_pure replay)
  std::unique_ptr<StateIo<master_t<T>>> state_;
  double pure_s_ = 0, cp_pure_s_ = 0;
  std::int64_t steps_ = 0, tp_block_bytes_ = 0, dp_bytes_sent_ = 0, a2a_bytes_ = 0;
};

extern template class DataParallelTrainer<float>;
extern template class DataParallelTrainer<double>;
extern template class DataParallelTrainer<bf16>;
extern template class DataParallelTrainer<fp16>;

}  // namespace partrain::parallel
