#include "partrain/parallel/dp/gradient_reducer.hpp"

#include <algorithm>

#include "partrain/core/error.hpp"
#include "partrain/core/memory.hpp"
#include "partrain/core/timer.hpp"
#include "partrain/kernels/elementwise.hpp"
#include "partrain/models/moe.hpp"

namespace partrain::parallel {
namespace {
template <class T>
std::vector<std::pair<std::int64_t, std::int64_t>> layer_ranges(const models::Model<T>& m, std::size_t local) {
  std::vector<std::pair<std::int64_t, std::int64_t>> r;
  for (std::size_t i = 0; i < m.layers().size(); ++i)
    r.push_back(i < local ? std::pair<std::int64_t, std::int64_t>{0, 0} : m.declared_range(i));
  return r;
}
}  // namespace

template <class T>
GradientReducer<T>::GradientReducer(models::Model<T>& model, coll::MpiCommunicator& group, const DpOptions& opts,
                                    coll::MpiCommunicator* experts)
    : model_(model),
      group_(group),
      experts_(experts),
      opts_(opts),
      buckets_(layer_ranges(model, opts.local_layers),
               std::max<std::int64_t>(1, std::int64_t(opts.bucket_mib * 1024 * 1024 /
                                                      double(opts.reduce_fp32 && is_half_v<T> ? 4 : sizeof(T))))),
      resolved_(group.resolve(coll::Op::Allreduce, opts.algo, std::int64_t(opts.bucket_mib * 1048576))),
      launched_(buckets_.buckets().size(), false) {
  for (const auto& b : buckets_.buckets()) {
    std::vector<Piece> ps;
    if (!experts_) ps.push_back({b.begin, b.end, false});
    else
      for (const auto& p : model.params().infos()) {
        if (p.offset < b.begin || p.offset >= b.end) continue;
        const bool ex = models::is_expert_parameter(p.name);
        if (!ps.empty() && ps.back().expert == ex && ps.back().end == p.offset) ps.back().end = p.offset + p.size;
        else ps.push_back({p.offset, p.offset + p.size, ex});
      }
    pieces_.push_back(std::move(ps));
  }
  const bool shm = group.resolve(coll::Op::Allreduce, opts.algo, 1 << 20) == coll::Algo::Shm;
  if (opts.reduce_fp32 && is_half_v<T>) {  // the fp32 copy the buckets reduce: in the node's window for shm
    const std::int64_t n = model.params().numel();
    if (shm && group.size() > 1) {
      auto* shared = static_cast<float*>(group.shared_buffer(n * 4));
      grads32_ = View1<float>(shared, n);
      memory_track_external("grads/fp32_reduce_shared_window", shared, n * 4);
      shared_grads_ = shared;
    } else {
      grads32_ = View1<float>("grads/fp32_reduce", n);
    }
  } else if (shm && group.size() > 1) {  // zero-copy buckets: the gradient buffer moves into a window shared by the node
    const std::int64_t bytes = model.params().numel() * std::int64_t(sizeof(T));
    T* shared = static_cast<T*>(group.shared_buffer(bytes));
    model.params().adopt_grads(shared);
    model.rebind();  // drops the layers' views of the old buffer, which frees it
    memory_track_external("grads/shared_window", shared, bytes);
    shared_grads_ = shared;
  }
}

template <class T>
GradientReducer<T>::~GradientReducer() {
  if (shared_grads_) memory_untrack_external(shared_grads_);
}

template <class T>
void GradientReducer<T>::begin_step() {
  exposed_s_ = 0;
  first_launch_s_ = -1;
  last_done_s_ = 0;
  std::fill(launched_.begin(), launched_.end(), false);
  launches_.clear();
}

template <class T>
void GradientReducer<T>::launch(std::size_t k) {
  const auto& b = buckets_.buckets()[k];
  if (first_launch_s_ < 0) first_launch_s_ = wall_time_s();
  launched_[k] = true;
  launches_.emplace_back(k, launching_at_);
  // each piece on its group: the experts' runs over the ranks holding them (one piece without experts)
  auto reduce = [&](auto* base) {
    for (const auto& p : pieces_[k])
      inflight_.push_back((p.expert ? *experts_ : group_)
                              .allreduce(base + p.begin, base + p.begin, p.end - p.begin, coll::ReduceOp::Sum, opts_.algo));
  };
  if (grads32_.size()) {  // widened, then reduced in fp32
    float* w = grads32_.data() + b.begin;
    T* g = model_.params().grads().data() + b.begin;
    kernels::convert("partrain::dp::widen_bucket", View1<float>(w, b.size()), View1<T>(g, b.size()));
    Kokkos::fence();
    reduce(grads32_.data());
    return;
  }
  reduce(model_.params().grads().data());
}

template <class T>
void GradientReducer<T>::backward_done(std::size_t layer) {
  if (!opts_.overlap) return;
  const double t0 = fenced_time_s();
  launching_at_ = std::int64_t(layer);
  for (std::size_t k : buckets_.ready_after(layer)) launch(k);
  launching_at_ = -1;
  for (auto& r : inflight_) r.test();
  exposed_s_ += wall_time_s() - t0;
}

template <class T>
void GradientReducer<T>::progress() {
  if (inflight_.empty()) return;
  const double t0 = wall_time_s();
  for (auto& r : inflight_) r.test();
  exposed_s_ += wall_time_s() - t0;
}

template <class T>
void GradientReducer<T>::finish() {
  const double t0 = fenced_time_s();
  for (std::size_t k = 0; k < launched_.size(); ++k)
    if (!launched_[k]) launch(k);
  coll::wait_all(inflight_);
  inflight_.clear();
  last_done_s_ = wall_time_s();
  exposed_s_ += last_done_s_ - t0;
}

template <class T>
double GradientReducer<T>::finish_all(const std::vector<GradientReducer*>& rs) {
  const double t0 = fenced_time_s();
  for (auto* r : rs)
    for (std::size_t k = 0; k < r->launched_.size(); ++k)
      if (!r->launched_[k]) r->launch(k);
  coll::WaitTurns turns("the gradients' allreduces");
  for (bool done = false; !done;) {
    done = true;
    for (auto* r : rs)
      for (auto& q : r->inflight_) done = q.test() && done;
    if (!done) turns.turn();
  }
  const double t1 = wall_time_s();
  for (auto* r : rs) {
    r->inflight_.clear();
    r->last_done_s_ = t1;
  }
  return t1 - t0;
}

template <class T>
double GradientReducer<T>::measure_pure_comm(int reps) {
  std::vector<double> times;
  for (int i = 0; i <= reps; ++i) {
    coll::barrier(group_.comm());
    begin_step();
    const double t0 = fenced_time_s();
    finish();
    if (i > 0) times.push_back(fenced_time_s() - t0);
  }
  std::sort(times.begin(), times.end());
  return times.empty() ? 0.0 : times[times.size() / 2];
}

template <class T>
std::int64_t GradientReducer<T>::predicted_bytes_per_step() const {
  const int n = group_.size(), r = group_.rank();
  if (experts_) return -1;
  if (n == 1) return 0;
  std::int64_t elems = 0;
  for (const auto& b : buckets_.buckets()) {
    const auto algo = group_.resolve(coll::Op::Allreduce, opts_.algo, b.size() * wire_bytes());
    if (algo == coll::Algo::Ring)
      elems += (b.size() - coll::block_count(b.size(), n, r)) + (b.size() - coll::block_count(b.size(), n, (r + 1) % n));
    else if (algo == coll::Algo::Shm && shared_grads_)
      elems += coll::block_count(b.size(), n, r) * (n - 1);
    else
      return -1;
  }
  return elems * wire_bytes();
}

template class GradientReducer<float>;
template class GradientReducer<double>;
template class GradientReducer<bf16>;
template class GradientReducer<fp16>;

}  // namespace partrain::parallel
