// What a mixture of experts did in each step, over all ranks (docs/ep.md, Result file): the rows each expert computed
// per MoE block (the load imbalance), the choices dropped at the capacity, the load-balancing loss — for any trainer
// whose model has MoE blocks, with or without expert parallelism.
#pragma once

#include <mpi.h>

#include <vector>

#include "partrain/io/result_writer.hpp"
#include "partrain/models/gpt_layers.hpp"
#include "partrain/parallel/trainer.hpp"

namespace partrain::parallel {

template <class T>
class MoeLog {
 public:
  /// Finds the model's MoE blocks (none: the log records nothing).
  explicit MoeLog(const models::Model<T>& model);
  bool empty() const { return blocks_.empty(); }
  const std::vector<const models::GptBlock<T>*>& blocks() const { return blocks_; }
  /// After a step whose one microbatch of `samples` samples left its states in `ws`: the counts and the auxiliary
  /// loss summed over `comm` (collective), the loss as a mean over the `global_rows` rows.
  void record(const typename models::Model<T>::Workspace& ws, std::int64_t samples, MPI_Comm comm, double global_rows);
  /// expert_load_imbalance, expert_rank_load_imbalance (experts in `ep` consecutive ranks' groups), dropped_fraction,
  /// aux_loss_last.
  NamedFigures summary(int ep, std::int64_t global_batch) const;
  std::vector<io::ExtraDataset> datasets() const;

 private:
  std::vector<const models::GptBlock<T>*> blocks_;
  std::vector<std::size_t> layers_;  ///< the blocks' indices among the model's layers
  std::int64_t E_ = 0, k_ = 0, T_ = 0, steps_ = 0;
  std::vector<double> tokens_, dropped_, aux_;
};

extern template class MoeLog<float>;
extern template class MoeLog<double>;
extern template class MoeLog<bf16>;
extern template class MoeLog<fp16>;

}  // namespace partrain::parallel
