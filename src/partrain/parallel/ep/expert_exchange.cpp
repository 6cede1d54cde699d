#include "partrain/parallel/ep/expert_exchange.hpp"

#include "partrain/core/error.hpp"
#include "partrain/core/timer.hpp"
#include "partrain/kernels/moe.hpp"

namespace partrain::parallel {

template <class T>
AlltoallExchange<T>::AlltoallExchange(coll::Communicator& group, std::int64_t experts, std::int64_t channels,
                                      coll::Algo algo)
    : group_(group), E_(experts), El_(experts / group.size()), C_(channels), algo_(algo) {
  PARTRAIN_REQUIRE(experts % group.size() == 0, "experts must divide by the expert-parallel degree");
  const auto n = std::size_t(group.size());
  counts_out_.resize(n * std::size_t(El_));
  counts_in_.resize(n * std::size_t(El_));
  elems_out_.resize(n);
  elems_in_.resize(n);
}

template <class T>
View2<T>& AlltoallExchange<T>::staging(std::int64_t rows) {
  if (std::int64_t(staging_.extent(0)) < rows) staging_ = View2<T>("comm/ep.staging", rows, C_);
  return staging_;
}

template <class T>
void AlltoallExchange<T>::plan(const std::vector<std::int64_t>& rows_per_expert, models::ExchangePlan& p) {
  const double t0 = fenced_time_s();
  const int n = group_.size();
  for (std::size_t i = 0; i < counts_out_.size(); ++i) counts_out_[i] = double(rows_per_expert[i]);  // peer d: its El experts
  group_.alltoall(counts_out_.data(), counts_in_.data(), El_, algo_).wait();
  p.send_rows.assign(std::size_t(n), 0);
  p.recv_rows.assign(std::size_t(n), 0);
  p.local_rows.assign(std::size_t(El_), 0);
  for (int d = 0; d < n; ++d)
    for (std::int64_t e = 0; e < El_; ++e) {
      const auto at = std::size_t(d) * std::size_t(El_) + std::size_t(e);
      p.send_rows[std::size_t(d)] += rows_per_expert[at];
      p.recv_rows[std::size_t(d)] += std::int64_t(counts_in_[at]);
      p.local_rows[std::size_t(e)] += std::int64_t(counts_in_[at]);
    }
  p.received = 0;
  for (auto r : p.recv_rows) p.received += r;
  // expert-major row i ← peer-major row order(i): local expert e's rows from peer 0, then peer 1, …
  std::vector<std::int64_t> start(std::size_t(n), 0);
  for (int d = 1; d < n; ++d) start[std::size_t(d)] = start[std::size_t(d) - 1] + p.recv_rows[std::size_t(d) - 1];
  if (std::int64_t(p.order.extent(0)) < p.received) p.order = Kokkos::View<std::int64_t*, MemSpace>("act/ep.order", p.received);
  auto order = Kokkos::create_mirror_view(p.order);
  std::int64_t i = 0;
  for (std::int64_t e = 0; e < El_; ++e)
    for (int d = 0; d < n; ++d) {
      std::int64_t at = start[std::size_t(d)];
      for (std::int64_t e2 = 0; e2 < e; ++e2) at += std::int64_t(counts_in_[std::size_t(d) * std::size_t(El_) + std::size_t(e2)]);
      const auto c = std::int64_t(counts_in_[std::size_t(d) * std::size_t(El_) + std::size_t(e)]);
      for (std::int64_t r = 0; r < c; ++r) order(i++) = at + r;
    }
  Kokkos::deep_copy(p.order, order);
  time_s_ += fenced_time_s() - t0;
}

namespace {
Kokkos::View<std::int64_t*, MemSpace> first(const Kokkos::View<std::int64_t*, MemSpace>& v, std::int64_t n) {
  return Kokkos::View<std::int64_t*, MemSpace>(v.data(), std::size_t(n));
}
}  // namespace

template <class T>
void AlltoallExchange<T>::start_dispatch(const models::ExchangePlan& p, const View2<T>& send) {
  PARTRAIN_REQUIRE(!busy_, "one expert exchange in flight at a time");
  const double t0 = fenced_time_s();
  const int n = group_.size();
  auto& st = staging(p.received);
  for (int d = 0; d < n; ++d) {
    elems_out_[std::size_t(d)] = p.send_rows[std::size_t(d)] * C_;
    elems_in_[std::size_t(d)] = p.recv_rows[std::size_t(d)] * C_;
    if (d != group_.rank()) rows_sent_ += p.send_rows[std::size_t(d)];
  }
  inflight_ = group_.alltoallv(send.data(), elems_out_.data(), st.data(), elems_in_.data(), algo_);
  busy_ = true;
  time_s_ += wall_time_s() - t0;
}

template <class T>
void AlltoallExchange<T>::finish_dispatch(const models::ExchangePlan& p, const View2<T>& recv) {
  const double t0 = wall_time_s();
  inflight_.wait();
  busy_ = false;
  kernels::permute_rows(View2<T>(staging_.data(), std::size_t(p.received), std::size_t(C_)), first(p.order, p.received), recv);
  time_s_ += fenced_time_s() - t0;
}

template <class T>
void AlltoallExchange<T>::start_combine(const models::ExchangePlan& p, const View2<T>& local, const View2<T>& back) {
  PARTRAIN_REQUIRE(!busy_, "one expert exchange in flight at a time");
  const double t0 = fenced_time_s();
  const int n = group_.size();
  auto& st = staging(p.received);
  const View2<T> peer_major(st.data(), std::size_t(p.received), std::size_t(C_));
  kernels::unpermute_rows(local, first(p.order, p.received), peer_major);
  Kokkos::fence();
  for (int d = 0; d < n; ++d) {
    elems_out_[std::size_t(d)] = p.recv_rows[std::size_t(d)] * C_;
    elems_in_[std::size_t(d)] = p.send_rows[std::size_t(d)] * C_;
    if (d != group_.rank()) rows_sent_ += p.recv_rows[std::size_t(d)];
  }
  inflight_ = group_.alltoallv(st.data(), elems_out_.data(), back.data(), elems_in_.data(), algo_);
  busy_ = true;
  time_s_ += wall_time_s() - t0;
}

template <class T>
void AlltoallExchange<T>::finish_combine() {
  const double t0 = wall_time_s();
  inflight_.wait();
  busy_ = false;
  time_s_ += fenced_time_s() - t0;
}

template <class T>
void AlltoallExchange<T>::progress() {
  if (!busy_) return;
  const double t0 = wall_time_s();
  inflight_.test();
  time_s_ += wall_time_s() - t0;
}

template class AlltoallExchange<float>;
template class AlltoallExchange<double>;
template class AlltoallExchange<bf16>;
template class AlltoallExchange<fp16>;

}  // namespace partrain::parallel
