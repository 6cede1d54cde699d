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
#pragma once

#include <functional>
#include <memory>

#include "partrain/collectives/process_grid.hpp"
#include "partrain/parallel/state.hpp"
#include "partrain/models/model_config.hpp"
#include "partrain/parallel/pipeline/executor.hpp"
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
  PipelineTrainer(const MakeModel& make, std::uint64_t seed, const models::Dataset<T>& data,
                  const models::TrainSpec& spec, coll::ProcessGrid& grid, TpContext* tp, const PipelineOptions& opts);

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

  int stage() const { return stage_; }
  const std::vector<std::unique_ptr<ModelChunk<T>>>& chunks() const { return chunks_; }
  /// "stage 0: embedding + blocks.0-1 | stage 1: blocks.2-3 + head" (model chunks in order)
  const std::string& layout() const { return layout_; }

 private:
  void sync_tied_grads();

  const models::Dataset<T>& data_;
  models::TrainSpec spec_;
  coll::ProcessGrid& grid_;
  TpContext* tp_;
  PipelineOptions opts_;
  int stage_ = 0;
  std::int64_t local_ = 0, first_sample_ = 0, mb_samples_ = 0;
  std::vector<std::unique_ptr<ModelChunk<T>>> chunks_;
  std::vector<std::unique_ptr<GradientReducer<T>>> reducers_;
  std::vector<std::unique_ptr<models::Optimizer<T>>> optimizers_;
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
  std::unique_ptr<StateIo<T>> state_;
};

extern template class PipelineTrainer<float>;
extern template class PipelineTrainer<double>;

}  // namespace partrain::parallel::pipeline
