// Data parallelism: every rank holds the whole model and trains on its slice of the global batch (rank r of the
// dp group takes global samples [r·b, (r+1)·b), b = B/dp); the loss is scaled by 1/(global rows) so that the SUM
// of the ranks' gradients is the gradient of the global mean loss. Gradients are summed bucket by bucket with
// the collectives library; with `overlap`, a bucket's allreduce is launched as soon as its gradients are final
// and progressed between layers (test() at each layer boundary), otherwise all run after the backward pass.
// Every rank ends the step with bit-identical gradients, so the replicated optimizer keeps the replicas equal.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "partrain/collectives/mpi_communicator.hpp"
#include "partrain/models/trainer.hpp"
#include "partrain/parallel/dp_buckets.hpp"

namespace partrain::parallel {

struct DpOptions {
  coll::Algo algo = coll::Algo::Auto;
  double bucket_mib = 25.0;
  bool overlap = true;
};

/// One step's measurements on this rank (seconds).
struct DpStepRecord {
  double loss = 0;           ///< mean over the global batch (identical on every rank)
  double time_s = 0;         ///< whole step: forward, backward, communication, optimizer
  double forward_s = 0, backward_s = 0;  ///< compute only (communication calls made between layers excluded)
  double comm_exposed_s = 0;  ///< time this rank spent inside communication calls (launch, progress, final wait)
  double comm_span_s = 0;     ///< from the first bucket's launch to the last one's completion
  double optimizer_s = 0;
};

template <class T>
class DataParallelTrainer {
 public:
  using BeforeUpdate = std::function<void(double loss)>;

  /// With algorithm shm (or auto on one node) the model's gradient buffer moves into a window shared by the
  /// node's ranks, and every bucket is reduced in place in one pass (zero-copy).
  DataParallelTrainer(models::Model<T>& model, const models::Dataset<T>& data, const models::TrainSpec& spec,
                      coll::MpiCommunicator& dp, const DpOptions& opts);
  ~DataParallelTrainer();
  DataParallelTrainer(const DataParallelTrainer&) = delete;
  DataParallelTrainer& operator=(const DataParallelTrainer&) = delete;

  /// One training step (step numbers key the data). `before_update` runs after the gradients are reduced.
  DpStepRecord step(std::int64_t step, const BeforeUpdate& before_update = {});

  /// t_pure: the median time of the step's bucket allreduces run alone (no compute), over `reps` repetitions
  /// after one warm-up. Leaves the gradients changed: call after training.
  double measure_pure_comm(int reps);

  const GradientBuckets& buckets() const { return buckets_; }
  const models::Batch<T>& local_batch() const { return batch_; }
  std::int64_t local_samples() const { return local_; }
  /// Bytes one rank sends per step by the closed form of the algorithm the buckets run (ring: (N − b_r) +
  /// (N − b_{r+1}) elements per bucket of N; shm zero-copy: b_r·(n − 1), its share written into every peer's
  /// buffer); −1 where no closed form is kept (recdbl, tree, vendor).
  std::int64_t predicted_bytes_per_step() const;
  models::Optimizer<T>& optimizer() { return opt_; }

 private:
  void launch(std::size_t bucket);
  void progress();

  models::Model<T>& model_;
  const models::Dataset<T>& data_;
  models::TrainSpec spec_;
  coll::MpiCommunicator& dp_;
  DpOptions opts_;
  models::Optimizer<T> opt_;
  std::int64_t local_ = 0, first_ = 0;
  models::Batch<T> batch_;
  typename models::Model<T>::Workspace ws_;
  GradientBuckets buckets_;
  std::vector<coll::Request> inflight_;
  double comm_in_hooks_s_ = 0, first_launch_s_ = -1;
  void* shared_grads_ = nullptr;
};

extern template class DataParallelTrainer<float>;
extern template class DataParallelTrainer<double>;

}  // namespace partrain::parallel
