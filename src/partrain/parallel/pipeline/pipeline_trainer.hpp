// Pipeline parallelism on the 3D grid (ranks = p × d × t, pp outermost, tp fastest): the reference model's layers
// cut into p·v model chunks (partition.hpp), v per stage; each step runs the stage's action list (schedule.hpp)
// through the executor over m microbatches of this data-parallel rank's slice of the global batch. Tensor
// parallelism lives inside the chunks' layers; data parallelism is partrain-dp's bucketed allreduce over the dp
// group, one reducer per chunk, launched once a chunk's last microbatch has finished its backward. The tied wte's two
// copies (first chunk's embedding, last chunk's head) have their gradients summed over the embedding group before
// the update (Megatron's embedding group), so both stay equal to the reference's single wte.
//
// Loss: each microbatch's per-row losses are scaled by 1/(global rows), so the gradients accumulated over the
// microbatches and summed over the data-parallel ranks are those of the mean over the global batch (never the sum:
// DeepSpeed#7773).
//
// Mixed precision (T = bf16 / fp16): every chunk computes, stores and sends its activations in T; each chunk keeps
// fp32 master weights of its parameters (models::MixedPrecision), and one loss scaler serves all chunks of the rank.
// fp16's inf/NaN check is agreed over the whole grid (stages hold different parameters), so every rank skips the
// same steps, as Megatron's optimizer does over its model-parallel group.
//
// Expert parallelism (a mixture-of-experts GPT, ep.degree > 1): the data-parallel ranks of a stage form expert groups
// of ep consecutive replicas, each holding E/ep of every MoE block in the stage; the MoE layers exchange their tokens
// within the group (parallel/ep/), and each chunk's reducer sums the experts' gradients over the ranks holding them.
// Every rank of a group runs the same action list, so the all-to-alls inside a forward or backward always meet, as
// the tensor-parallel collectives inside the stages do.
#pragma once

#include <functional>
#include <memory>

#include "partrain/collectives/process_grid.hpp"
#include "partrain/parallel/state.hpp"
#include "partrain/models/model_config.hpp"
#include "partrain/parallel/ep/expert_exchange.hpp"
#include "partrain/parallel/ep/experts.hpp"
#include "partrain/parallel/pipeline/executor.hpp"
#include "partrain/parallel/precision.hpp"
#include "partrain/parallel/tp/mappings.hpp"
#include "partrain/parallel/trainer.hpp"

namespace partrain::parallel::pipeline {

struct PipelineOptions {
  ScheduleSpec schedule;
  std::string partition = "uniform";           ///< uniform | flops | explicit
  std::vector<std::int64_t> partition_counts;  ///< body layers per model chunk (explicit)
  bool recompute = false;
  DpOptions dp;
};

template <class T>
class PipelineTrainer : public Trainer<T> {
 public:
  using BeforeUpdate = typename Trainer<T>::BeforeUpdate;
  /// Builds the whole model, unbuilt (layers only): called once per chunk, whose layers it keeps.
  using MakeModel = std::function<std::unique_ptr<models::Model<T>>()>;

  /// Collective over the grid's world. `tp`: the tensor-parallel context of the model's layers (null without).
  /// `ep`: expert parallelism's groups within each stage's data-parallel group (null without; `make` then builds
  /// the GPT with this rank's experts).
  PipelineTrainer(const MakeModel& make, std::uint64_t seed, const models::Dataset<T>& data,
                  const models::TrainSpec& spec, coll::ProcessGrid& grid, TpContext* tp, const PipelineOptions& opts,
                  const EpGroups* ep = nullptr);

  StepRecord step(std::int64_t step, const BeforeUpdate& before_update = {}) override;
  std::string describe() const override;
  std::vector<io::NamedTensor> gather_full(bool grads) override;
  double measure_pure_comm(int reps) override;
  std::vector<std::pair<std::string, bool>> self_check() override;
  coll::Counters counters() const override { return counters_; }
  std::vector<std::string> exposed_comm_phases() const override;
  std::string step_note(const StepRecord& rec) const override;
  NamedFigures summary(const RunMedians& m) override;
  std::vector<io::ExtraDataset> datasets() override;
  NamedStrings attributes() const override;
  std::array<double, 3> predicted_state_bytes() const override;
  bool checkpoints() const override { return true; }
  std::vector<io::TensorPart> state_parts(bool writer) override;
  void restore_state(const std::vector<io::TensorPart>& parts, std::int64_t steps) override;
  std::int64_t optimizer_steps() const override { return optimizers_.empty() ? 0 : optimizers_[0]->steps_taken(); }
  NamedFigures checkpoint_numbers() const override { return scaler_numbers_of<T>(scaler_); }
  void restore_numbers(const std::map<std::string, double>& n) override { restore_scaler_of<T>(scaler_, n); }

  int stage() const { return stage_; }
  const std::vector<std::unique_ptr<ModelChunk<T>>>& chunks() const { return chunks_; }
  /// "stage 0: embedding + blocks.0-1 | stage 1: blocks.2-3 + head" (model chunks in order)
  const std::string& layout() const { return layout_; }

 private:
  void sync_tied_grads();
  /// The optimizer step of every chunk (fp16: skipped everywhere when any rank's gradients overflowed); whether it ran.
  bool update(double loss_scale);
  /// What the optimizer of chunk j reads: the fp32 reduction buffer (dp.grad_reduce_dtype = fp32) or the gradients.
  bool wide_grads() const { return reducers_.front()->fp32_grads().size() > 0; }

  const models::Dataset<T>& data_;
  models::TrainSpec spec_;
  coll::ProcessGrid& grid_;
  TpContext* tp_;
  PipelineOptions opts_;
  EpGroups ep_;
  std::unique_ptr<AlltoallExchange<T>> exchange_;  ///< the MoE layers' token exchange (expert parallelism)
  std::int64_t experts_ = 0, expert_first_ = 0;
  int stage_ = 0;
  std::int64_t local_ = 0, first_sample_ = 0, mb_samples_ = 0;
  std::vector<std::unique_ptr<ModelChunk<T>>> chunks_;
  std::vector<std::unique_ptr<GradientReducer<T>>> reducers_;
  std::vector<std::unique_ptr<models::Optimizer<master_t<T>>>> optimizers_;
  models::LossScaler scaler_;                                      ///< fp16: one for every chunk
  std::vector<std::unique_ptr<models::MixedPrecision<T>>> mixed_;  ///< per chunk: its master weights
  PrecisionLog<T> log_;
  std::unique_ptr<coll::MpiCommunicator> embedding_;  ///< the first and last stages (tied parameters)
  std::unique_ptr<StageLinks<T>> links_;
  std::unique_ptr<Executor<T>> exec_;
  models::Batch<T> batch_;
  std::vector<models::Batch<T>> microbatches_;
  std::string layout_;
  std::vector<TimelineEntry> timeline_;
  std::vector<int> timeline_steps_;
  std::int64_t steps_ = 0;
  int peak_inflight_ = 0;
  double pure_s_ = 0, my_bubble_fraction_ = 0;
  std::vector<double> bubble_s_, span_s_;  ///< per step
  coll::Counters counters_;
  std::unique_ptr<StateIo<master_t<T>>> state_;
};

extern template class PipelineTrainer<float>;
extern template class PipelineTrainer<double>;
extern template class PipelineTrainer<bf16>;
extern template class PipelineTrainer<fp16>;

}  // namespace partrain::parallel::pipeline
