#include "partrain/parallel/cp/ring_attention.hpp"

#include "partrain/core/timer.hpp"
#include "partrain/kernels/elementwise.hpp"

namespace partrain::parallel {
namespace {
constexpr int kTagKv = 11, kTagDkv = 12;

template <class T>
struct RingState : models::LayerState {
  View1<T> q, kv, o;  ///< q, o [B, H, Tl, d]; kv = k | v, each [B, H, Tl, d]
  View1<acc_t<T>> lse;
};
}  // namespace

template <class T>
RingAttention<T>::RingAttention(CpContext& cp, std::int64_t heads, std::int64_t d, std::string name)
    : cp_(cp), heads_(heads), d_(d), name_(std::move(name)) {}

template <class T>
std::unique_ptr<models::LayerState> RingAttention<T>::make_state(const std::string& prefix, std::int64_t B) const {
  const std::int64_t n = B * heads_ * lay().local * d_;
  auto st = std::make_unique<RingState<T>>();
  st->q = View1<T>(prefix + ".q", n);
  st->kv = View1<T>(prefix + ".kv", 2 * n);
  st->o = View1<T>(prefix + ".o", n);
  st->lse = View1<A>(prefix + ".lse", B * heads_ * lay().local);
  return st;
}

template <class T>
void RingAttention<T>::ensure_scratch(std::int64_t B) {
  if (B == B_) return;
  B_ = B;
  const std::int64_t rows = B * heads_ * lay().local, n = rows * d_, c = lay().chunk();
  const std::string a = "act/" + name_ + ".ring";
  ring_[0] = View1<T>(a + ".kv0", 2 * n);
  ring_[1] = View1<T>(a + ".kv1", 2 * n);
  dkv_in_ = View1<T>(a + ".dkv_in", 2 * n);
  dkv_acc_ = View1<T>(a + ".dkv_acc", 2 * n);
  dkv_part_ = View1<T>(a + ".dkv_part", 2 * n);
  dout_ = View1<T>(a + ".dout", n);
  dq_ = View1<T>(a + ".dq", n);
  m_ = View1<A>(a + ".m", rows);
  l_ = View1<A>(a + ".l", rows);
  delta_ = View1<A>(a + ".delta", rows);
  s_ = View2<T>(a + ".s", c, c);
  dp_ = View2<T>(a + ".dp", c, c);
}

template <class T>
void RingAttention<T>::shift(const T* out, T* in, std::int64_t n, int tag, coll::Request& sreq, coll::Request& rreq) {
  const int p = cp_.size(), r = cp_.rank();
  const auto before = cp_.comm->counters()[coll::Op::SendRecv].bytes_sent;
  rreq = cp_.comm->recv(in, n, coll::datatype_of<T>(), (r + p - 1) % p, tag);
  rreq.describe("ring attention recv", (r + p - 1) % p);
  sreq = cp_.comm->send(out, n, coll::datatype_of<T>(), (r + 1) % p, tag);
  sreq.describe("ring attention send", (r + 1) % p);
  cp_.bytes_sent += cp_.comm->counters()[coll::Op::SendRecv].bytes_sent - before;
}

template <class T>
void RingAttention<T>::wait(coll::Request& sreq, coll::Request& rreq, double posted) {
  const double t0 = fenced_time_s();
  rreq.wait();
  sreq.wait();
  const double t1 = wall_time_s();
  cp_.wait_s += t1 - t0;
  cp_.span_s += t1 - posted;
}

/// Splits a [B·Tl, width] activation's head columns [col0 + h·d, …) into a head-major [B, H, Tl, d] array (or, with
/// `back`, merges them into it).
template <class T>
static void heads_major(const View2<T>& x, std::int64_t col0, const View1<T>& hm, std::int64_t H, std::int64_t Tl,
                        std::int64_t d, bool back) {
  auto X = x;
  auto Y = hm;
  Kokkos::parallel_for(
      "partrain::cp::ring_heads", Kokkos::RangePolicy<ExecSpace>(0, x.extent(0)), KOKKOS_LAMBDA(std::int64_t row) {
        const std::int64_t b = row / Tl, j = row % Tl;
        for (std::int64_t h = 0; h < H; ++h)
          for (std::int64_t i = 0; i < d; ++i) {
            const std::int64_t k = ((b * H + h) * Tl + j) * d + i;
            if (back) X(row, col0 + h * d + i) = Y(k);
            else Y(k) = X(row, col0 + h * d + i);
          }
      });
}

template <class T>
void RingAttention<T>::forward(const View2<T>& qkv, const View2<T>& out, models::LayerState& s) {
  auto& st = static_cast<RingState<T>&>(s);
  const std::int64_t Tl = lay().local, B = std::int64_t(qkv.extent(0)) / Tl, w = heads_ * d_, c = lay().chunk();
  const std::int64_t n = B * heads_ * Tl * d_;
  ensure_scratch(B);
  const double t0 = fenced_time_s();
  heads_major(qkv, 0, st.q, heads_, Tl, d_, false);
  heads_major(qkv, w, View1<T>(st.kv.data(), n), heads_, Tl, d_, false);
  heads_major(qkv, 2 * w, View1<T>(st.kv.data() + n, n), heads_, Tl, d_, false);
  kernels::OnlineSoftmax<T> all;
  all.m = m_;
  all.l = l_;
  all.o = View2<T>(st.o.data(), B * heads_ * Tl, d_);
  kernels::block_attention_begin(all);
  const int p = cp_.size(), r = cp_.rank();
  T* cur = st.kv.data();
  for (int step = 0; step < p; ++step) {
    const int src = (r - step + p) % p;
    T* next = ring_[step % 2].data();
    coll::Request sreq, rreq;
    const double posted = wall_time_s();
    if (step + 1 < p) shift(cur, next, 2 * n, kTagKv, sreq, rreq);
    for_each_pair(B, src, step + 1 < p, [&](std::int64_t b, std::int64_t h, int qi, int kj, std::int64_t q0, std::int64_t k0) {
      const std::int64_t row = (b * heads_ + h) * Tl + qi * c;
      kernels::OnlineSoftmax<T> os;
      os.m = View1<A>(m_.data() + row, c);
      os.l = View1<A>(l_.data() + row, c);
      os.o = rows(st.o.data(), b, h, qi * c, c);
      kernels::block_attention_step(rows(st.q.data(), b, h, qi * c, c), rows(cur, b, h, kj * c, c),
                                    rows(cur + n, b, h, kj * c, c), q0, k0, os, s_);
    });
    if (step + 1 < p) wait(sreq, rreq, posted);
    cur = next;
  }
  kernels::block_attention_finish(all, st.lse);
  heads_major(out, 0, st.o, heads_, Tl, d_, true);
  cp_.attention_s += fenced_time_s() - t0;
  ++cp_.calls;
}

template <class T>
void RingAttention<T>::backward(const View2<T>& dout, const View2<T>& dqkv, models::LayerState& s) {
  auto& st = static_cast<RingState<T>&>(s);
  const std::int64_t Tl = lay().local, B = std::int64_t(dout.extent(0)) / Tl, w = heads_ * d_, c = lay().chunk();
  const std::int64_t n = B * heads_ * Tl * d_, R = B * heads_ * Tl;
  ensure_scratch(B);
  const double t0 = fenced_time_s();
  heads_major(dout, 0, dout_, heads_, Tl, d_, false);
  kernels::block_attention_delta(View2<T>(dout_.data(), R, d_), View2<T>(st.o.data(), R, d_), delta_);
  Kokkos::deep_copy(dq_, T(0));
  const int p = cp_.size(), r = cp_.rank();
  T* cur = st.kv.data();
  View1<T> acc = dkv_acc_, part = dkv_part_;
  coll::Request dsend, drecv;
  double dposted = 0;
  for (int step = 0; step < p; ++step) {
    const int src = (r - step + p) % p;
    T* next = ring_[step % 2].data();
    coll::Request sreq, rreq;
    const double posted = wall_time_s();
    if (step + 1 < p) shift(cur, next, 2 * n, kTagKv, sreq, rreq);
    Kokkos::deep_copy(part, T(0));
    for_each_pair(B, src, p > 1, [&](std::int64_t b, std::int64_t h, int qi, int kj, std::int64_t q0, std::int64_t k0) {
      const std::int64_t row = (b * heads_ + h) * Tl + qi * c;
      kernels::block_attention_backward(
          rows(st.q.data(), b, h, qi * c, c), rows(cur, b, h, kj * c, c), rows(cur + n, b, h, kj * c, c),
          rows(dout_.data(), b, h, qi * c, c), View1<A>(st.lse.data() + row, c), View1<A>(delta_.data() + row, c),
          q0, k0, rows(dq_.data(), b, h, qi * c, c), rows(part.data(), b, h, kj * c, c),
          rows(part.data() + n, b, h, kj * c, c), s_, dp_);
    });
    // the block's dK, dV so far (from the ranks before this one) land while this rank computed its share
    if (step > 0) {
      wait(dsend, drecv, dposted);  // acc's send is done too: it becomes the next step's part
      kernels::accumulate("partrain::cp::ring_dkv", part, dkv_in_);
    }
    std::swap(acc, part);
    if (p > 1) {
      dposted = wall_time_s();
      shift(acc.data(), dkv_in_.data(), 2 * n, kTagDkv, dsend, drecv);
    }
    if (step + 1 < p) wait(sreq, rreq, posted);
    cur = next;
  }
  if (p > 1) wait(dsend, drecv, dposted);  // this rank's own block, home after cp hops
  const T* dkv = p > 1 ? dkv_in_.data() : acc.data();
  heads_major(dqkv, 0, dq_, heads_, Tl, d_, true);
  heads_major(dqkv, w, View1<T>(const_cast<T*>(dkv), n), heads_, Tl, d_, true);
  heads_major(dqkv, 2 * w, View1<T>(const_cast<T*>(dkv) + n, n), heads_, Tl, d_, true);
  cp_.attention_s += fenced_time_s() - t0;
  ++cp_.calls;
}

template <class T>
double RingAttention<T>::replay_transfers(std::int64_t B) {
  ensure_scratch(B);
  const std::int64_t n = B * heads_ * lay().local * d_;
  const int p = cp_.size();
  const auto bytes = cp_.bytes_sent;
  const double wait0 = cp_.wait_s, span0 = cp_.span_s;
  const double t0 = fenced_time_s();
  coll::Request sreq, rreq;
  for (int step = 0; step + 1 < p; ++step) {  // forward: the keys and values
    shift(ring_[step % 2].data(), ring_[(step + 1) % 2].data(), 2 * n, kTagKv, sreq, rreq);
    wait(sreq, rreq, wall_time_s());
  }
  for (int step = 0; step < p; ++step) {  // backward: keys and values again, and their gradients
    coll::Request dsend, drecv;
    if (step + 1 < p) shift(ring_[step % 2].data(), ring_[(step + 1) % 2].data(), 2 * n, kTagKv, sreq, rreq);
    shift(dkv_acc_.data(), dkv_in_.data(), 2 * n, kTagDkv, dsend, drecv);
    wait(dsend, drecv, wall_time_s());
    if (step + 1 < p) wait(sreq, rreq, wall_time_s());
  }
  const double t = fenced_time_s() - t0;
  cp_.bytes_sent = bytes;  // a measurement, not training traffic
  cp_.wait_s = wait0;
  cp_.span_s = span0;
  return t;
}

template class RingAttention<float>;
template class RingAttention<double>;
template class RingAttention<bf16>;
template class RingAttention<fp16>;

}  // namespace partrain::parallel
