#include "partrain/parallel/data_parallel.hpp"

#include <algorithm>

#include "partrain/core/error.hpp"
#include "partrain/core/memory.hpp"
#include "partrain/core/timer.hpp"

namespace partrain::parallel {
namespace {
template <class T>
std::vector<std::pair<std::int64_t, std::int64_t>> layer_ranges(const models::Model<T>& m) {
  std::vector<std::pair<std::int64_t, std::int64_t>> r;
  for (std::size_t i = 0; i < m.layers().size(); ++i) r.push_back(m.declared_range(i));
  return r;
}
}  // namespace

template <class T>
DataParallelTrainer<T>::DataParallelTrainer(models::Model<T>& model, const models::Dataset<T>& data,
                                            const models::TrainSpec& spec, coll::MpiCommunicator& dp,
                                            const DpOptions& opts)
    : model_(model),
      data_(data),
      spec_(spec),
      dp_(dp),
      opts_(opts),
      opt_(spec.optimizer, model.params().numel()),
      local_(spec.global_batch / dp.size()),
      first_(local_ * dp.rank()),
      batch_(data.allocate(local_)),
      ws_(model.make_workspace(local_)),
      buckets_(layer_ranges(model),
               std::max<std::int64_t>(1, std::int64_t(opts.bucket_mib * 1024 * 1024 / double(sizeof(T))))) {
  PARTRAIN_REQUIRE(spec.global_batch % dp.size() == 0, "global batch must divide by the data-parallel degree");
  const bool shm = dp.resolve(coll::Op::Allreduce, opts.algo, 1 << 20) == coll::Algo::Shm;
  if (shm && dp.size() > 1) {  // zero-copy buckets: the gradient buffer moves into a window shared by the node
    const std::int64_t bytes = model.params().numel() * std::int64_t(sizeof(T));
    T* shared = static_cast<T*>(dp.shared_buffer(bytes));
    model.params().adopt_grads(shared);
    model.rebind();  // drops the layers' views of the old buffer, which frees it
    memory_track_external("grads/shared_window", shared, bytes);
    shared_grads_ = shared;
  }
}

template <class T>
DataParallelTrainer<T>::~DataParallelTrainer() {
  if (shared_grads_) memory_untrack_external(shared_grads_);
}

template <class T>
void DataParallelTrainer<T>::launch(std::size_t k) {
  const auto& b = buckets_.buckets()[k];
  if (first_launch_s_ < 0) first_launch_s_ = wall_time_s();
  T* g = model_.params().grads().data() + b.begin;
  inflight_.push_back(dp_.allreduce(g, g, b.size(), coll::ReduceOp::Sum, opts_.algo));
}

template <class T>
void DataParallelTrainer<T>::progress() {
  for (auto& r : inflight_) r.test();
}

template <class T>
DpStepRecord DataParallelTrainer<T>::step(std::int64_t s, const BeforeUpdate& before_update) {
  data_.fill(std::uint64_t(s), first_, batch_);
  coll::barrier(dp_.comm());
  DpStepRecord rec;
  comm_in_hooks_s_ = 0;
  first_launch_s_ = -1;
  const double t0 = fenced_time_s();
  double t_fwd = t0;
  model_.params().zero_grad();
  typename models::Model<T>::Hooks hooks;
  hooks.forward_done = [&] { t_fwd = fenced_time_s(); };
  if (opts_.overlap)
    hooks.backward_done = [&](std::size_t layer) {
      const double h0 = fenced_time_s();
      for (std::size_t k : buckets_.ready_after(layer)) launch(k);
      progress();
      comm_in_hooks_s_ += wall_time_s() - h0;
    };
  const double rows = double(spec_.global_batch * model_.rows_per_sample());
  const double local_loss = model_.forward_backward(batch_, ws_, 1.0 / rows, hooks);
  const double t_bwd = fenced_time_s();
  if (!opts_.overlap)
    for (std::size_t k = 0; k < buckets_.buckets().size(); ++k) launch(k);
  coll::wait_all(inflight_);
  inflight_.clear();
  model_.finalize_grads();  // e.g. sequence-parallel replicated parameters: sum over the tensor-parallel group
  const double t_comm = fenced_time_s();
  double global_loss = 0;
  coll::allreduce(&local_loss, &global_loss, 1, MPI_DOUBLE, MPI_SUM, dp_.comm());
  rec.loss = global_loss / rows;
  if (before_update) before_update(rec.loss);
  const double t_opt0 = fenced_time_s();
  opt_.step(model_.params().params(), model_.params().grads());
  const double t_end = fenced_time_s();
  rec.forward_s = t_fwd - t0;
  rec.backward_s = (t_bwd - t_fwd) - comm_in_hooks_s_;
  rec.comm_exposed_s = comm_in_hooks_s_ + (t_comm - t_bwd);
  rec.optimizer_s = t_end - t_opt0;
  rec.comm_span_s = first_launch_s_ < 0 ? 0.0 : t_comm - first_launch_s_;
  rec.time_s = (t_comm - t0) + rec.optimizer_s;
  return rec;
}

template <class T>
double DataParallelTrainer<T>::measure_pure_comm(int reps) {
  std::vector<double> times;
  for (int i = 0; i <= reps; ++i) {
    coll::barrier(dp_.comm());
    const double t0 = fenced_time_s();
    for (std::size_t k = 0; k < buckets_.buckets().size(); ++k) launch(k);
    coll::wait_all(inflight_);
    inflight_.clear();
    if (i > 0) times.push_back(fenced_time_s() - t0);
  }
  std::sort(times.begin(), times.end());
  return times.empty() ? 0.0 : times[times.size() / 2];
}

template <class T>
std::int64_t DataParallelTrainer<T>::predicted_bytes_per_step() const {
  const int n = dp_.size(), r = dp_.rank();
  if (n == 1) return 0;
  std::int64_t elems = 0;
  for (const auto& b : buckets_.buckets()) {
    const auto algo = dp_.resolve(coll::Op::Allreduce, opts_.algo, b.size() * std::int64_t(sizeof(T)));
    if (algo == coll::Algo::Ring)
      elems += (b.size() - coll::block_count(b.size(), n, r)) + (b.size() - coll::block_count(b.size(), n, (r + 1) % n));
    else if (algo == coll::Algo::Shm && shared_grads_)
      elems += coll::block_count(b.size(), n, r) * (n - 1);
    else
      return -1;
  }
  return elems * std::int64_t(sizeof(T));
}

template class DataParallelTrainer<float>;
template class DataParallelTrainer<double>;

}  // namespace partrain::parallel
