// Expert parallelism inside data parallelism (docs/ep.md), as Megatron-Core and DeepSpeed-MoE place it: every rank
// is a data-parallel rank with its own slice of the global batch; the ranks form expert groups of ep consecutive
// ranks, each of which holds E/ep of every MoE block's experts (rank r: experts [(r mod ep)·E/ep, …)). Tokens reach
// their experts through the AlltoallExchange inside each MoE layer. The parameters every rank holds (attention,
// embeddings, routers, dense MLPs) are summed over all ranks; an expert's parameters over the ranks holding it (the
// expert-data-parallel group: the same r mod ep). Both are partrain-dp's bucketed allreduce in place on the gradient
// buffer, overlapped with the backward (GradientReducer, each bucket's expert runs on the second group).
#pragma once

#include <memory>

#include "partrain/collectives/mpi_communicator.hpp"
#include "partrain/models/gpt_layers.hpp"
#include "partrain/models/trainer.hpp"
#include "partrain/parallel/dp/gradient_reducer.hpp"
#include "partrain/parallel/ep/expert_exchange.hpp"
#include "partrain/parallel/ep/experts.hpp"
#include "partrain/parallel/precision.hpp"
#include "partrain/parallel/state.hpp"
#include "partrain/parallel/trainer.hpp"

namespace partrain::parallel {

struct EpOptions {
  DpOptions dp;                            ///< the gradient sums (dp.*): buckets, algorithm, overlap
  coll::Algo a2a_algo = coll::Algo::Auto;  ///< the token all-to-alls (ep.algorithm)
};

template <class T>
class EpTrainer : public Trainer<T> {
 public:
  using BeforeUpdate = typename Trainer<T>::BeforeUpdate;
  /// `model`: built with this rank's experts (GptConfig::expert_first/expert_count); `world`: every rank (the
  /// data-parallel group); `ep`: the expert group; `edp`: the ranks holding the same experts.
  EpTrainer(models::Gpt<T>& model, const models::Dataset<T>& data, const models::TrainSpec& spec,
            coll::MpiCommunicator& world, coll::MpiCommunicator& ep, coll::MpiCommunicator& edp, const EpOptions& opts,
            std::uint64_t model_seed);

  StepRecord step(std::int64_t step, const BeforeUpdate& before_update = {}) override;
  std::string describe() const override;
  std::vector<io::NamedTensor> gather_full(bool grads) override;
  std::vector<std::pair<std::string, bool>> self_check() override;
  coll::Counters counters() const override { return counters_; }
  std::vector<std::string> exposed_comm_phases() const override { return {"alltoall", "comm_exposed"}; }
  std::string step_note(const StepRecord& rec) const override;
  NamedFigures summary(const RunMedians& m) override;
  std::vector<io::ExtraDataset> datasets() override;
  NamedStrings attributes() const override;
  std::array<double, 3> predicted_state_bytes() const override;
  bool checkpoints() const override { return true; }
  std::vector<io::TensorPart> state_parts(bool writer) override;
  void restore_state(const std::vector<io::TensorPart>& parts, std::int64_t steps) override;
  std::int64_t optimizer_steps() const override { return opt_.steps_taken(); }
  NamedFigures checkpoint_numbers() const override { return scaler_numbers(mixed_); }
  void restore_numbers(const std::map<std::string, double>& n) override { restore_scaler(mixed_, n); }

  double measure_pure_comm(int reps) override;

 private:
  models::Gpt<T>& model_;
  const models::Dataset<T>& data_;
  models::TrainSpec spec_;
  coll::MpiCommunicator &world_, &ep_, &edp_;
  EpOptions opts_;
  models::Optimizer<master_t<T>> opt_;
  models::MixedPrecision<T> mixed_;
  PrecisionLog<T> log_;
  AlltoallExchange<T> exchange_;
  std::vector<const models::GptBlock<T>*> moe_blocks_;
  std::vector<std::size_t> moe_layers_;  ///< their indices among the model's layers
  std::int64_t local_ = 0, first_ = 0;
  models::Batch<T> batch_;
  typename models::Model<T>::Workspace ws_;
  GradientReducer<T> reducer_;
  coll::Counters counters_;
  double pure_s_ = 0;
  std::unique_ptr<StateIo<master_t<T>>> state_;
  std::int64_t steps_ = 0, expert_params_ = 0;
  // per step, over all ranks: kept rows per (MoE block, expert), dropped choices, the auxiliary loss (mean)
  std::vector<double> tokens_, dropped_, aux_;
  std::int64_t a2a_bytes_ = 0;
};

extern template class EpTrainer<float>;
extern template class EpTrainer<double>;
extern template class EpTrainer<bf16>;
extern template class EpTrainer<fp16>;

}  // namespace partrain::parallel
