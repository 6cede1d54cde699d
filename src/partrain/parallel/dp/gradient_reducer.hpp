// The engine of data parallelism, shared by every strategy that has a data-parallel group (partrain-dp, the tensor-
// and pipeline-parallel replicas): the model's flat gradient buffer cut into buckets of whole layers (buckets.hpp),
// each summed IN PLACE over the group by one nonblocking allreduce. With overlap, a bucket is launched as soon as the
// backward of its lowest layer has run (backward_done) and progressed with test() at every later layer boundary;
// finish() waits for the rest. Every rank ends with bit-identical sums.
//
// With algorithm shm (or auto on one node) the gradient buffer moves into a window shared by the node's ranks, so
// every bucket is reduced in one pass with no staging (zero-copy; counted as gradients by the memory tracker).
//
// Expert parallelism (parallel/ep/): the experts' parameters are held by the ranks of an expert group, each its own
// experts, so their gradients are summed over a second group — the ranks holding the same experts — while the rest
// is summed over the data-parallel group. A bucket is then launched as its pieces: each run of parameters of one
// kind (an MoE block declares its experts after its other parameters), each piece on its group.
#pragma once

#include <vector>

#include "partrain/collectives/mpi_communicator.hpp"
#include "partrain/models/model.hpp"
#include "partrain/parallel/dp/buckets.hpp"

namespace partrain::parallel {

struct DpOptions {
  coll::Algo algo = coll::Algo::Auto;
  double bucket_mib = 25.0;
  bool overlap = true;
  /// 16-bit models: reduce the gradients in fp32 (dp.grad_reduce_dtype = "fp32", Megatron's
  /// accumulate-allreduce-grads-in-fp32) — each bucket widened into an fp32 buffer that the optimizer then reads —
  /// instead of in their own type (half the bytes).
  bool reduce_fp32 = false;
  /// The first `local_layers` layers' gradients are not reduced: they stay on the rank (the hybrid parameter server's
  /// workers push their sparse embedding rows to the servers instead, docs/ps.md).
  std::size_t local_layers = 0;
};

template <class T>
class GradientReducer {
 public:
  /// Collective over `group` (the shared window is allocated here when shm runs the buckets). `experts`: where the
  /// experts' gradients are summed (expert parallelism), or null.
  GradientReducer(models::Model<T>& model, coll::MpiCommunicator& group, const DpOptions& opts,
                  coll::MpiCommunicator* experts = nullptr);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  /// Starts a step's accounting (exposed time, span).
  void begin_step();
  /// Layer `layer`'s backward has run for the last time this step: launch the buckets it completes and progress
  /// those in flight (with overlap; without it, nothing happens until finish()).
  void backward_done(std::size_t layer);
  /// Progresses the buckets in flight (a strategy calls it between its own compute).
  void progress();
  /// Launches what is not yet launched and waits for every bucket.
  void finish();
  /// finish() of several reducers on one group at once (a pipeline stage's chunks): their buckets are launched and
  /// then progressed together — a zero-copy shm allreduce completes in launch order across buffers, so waiting on
  /// one reducer while another's earlier buckets sit untested would never end. Returns the time it took (which is
  /// not added to any reducer's exposed_s()).
  static double finish_all(const std::vector<GradientReducer*>& reducers);

  double exposed_s() const { return exposed_s_; }  ///< time inside launches, progress and the final wait
  double span_s() const { return first_launch_s_ < 0 ? 0.0 : last_done_s_ - first_launch_s_; }
  /// t_pure: the step's bucket allreduces alone, median of `reps` after one warm-up. Changes the gradients.
  double measure_pure_comm(int reps);
  /// Bytes one rank sends per step by the closed form of the algorithm the buckets run (ring: (N − b_r) +
  /// (N − b_{r+1}) elements per bucket of N; shm zero-copy: b_r·(n − 1)); −1 where none is kept (and with experts).
  std::int64_t predicted_bytes_per_step() const;

  const GradientBuckets& buckets() const { return buckets_; }
  /// The reduced gradients in fp32 (reduce_fp32 on a 16-bit model), empty otherwise: the optimizer reads them.
  const View1<float>& fp32_grads() const { return grads32_; }
  /// Bytes of one element on the wire.
  std::int64_t wire_bytes() const { return grads32_.size() ? 4 : std::int64_t(sizeof(T)); }
  /// This step's launches in order: (bucket, the layer whose backward had just ended; -1 when launched by finish()).
  /// With overlap every bucket goes as soon as its lowest layer's backward ends, so the plan decides the order.
  const std::vector<std::pair<std::size_t, std::int64_t>>& launches() const { return launches_; }
  coll::Algo resolved_algo() const { return resolved_; }
  coll::MpiCommunicator& group() { return group_; }
  bool overlap() const { return opts_.overlap; }

 private:
  void launch(std::size_t bucket);
  struct Piece {
    std::int64_t begin, end;
    bool expert;
  };

  models::Model<T>& model_;
  coll::MpiCommunicator& group_;
  coll::MpiCommunicator* experts_;
  DpOptions opts_;
  GradientBuckets buckets_;
  std::vector<std::vector<Piece>> pieces_;  ///< per bucket: its runs of one kind (one piece without experts)
  coll::Algo resolved_;
  std::vector<coll::Request> inflight_;
  std::vector<bool> launched_;
  std::vector<std::pair<std::size_t, std::int64_t>> launches_;
  std::int64_t launching_at_ = -1;  ///< the layer whose backward_done is launching (-1: finish)
  double exposed_s_ = 0, first_launch_s_ = -1, last_done_s_ = 0;
  void* shared_grads_ = nullptr;
  View1<float> grads32_;  ///< reduce_fp32: the fp32 copy of the gradients the buckets reduce
};

extern template class GradientReducer<float>;
extern template class GradientReducer<double>;
extern template class GradientReducer<bf16>;
extern template class GradientReducer<fp16>;

}  // namespace partrain::parallel
