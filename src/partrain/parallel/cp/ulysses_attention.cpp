#include "partrain/parallel/cp/ulysses_attention.hpp"

#include "partrain/core/timer.hpp"
#include "partrain/kernels/elementwise.hpp"
#include "partrain/parallel/cp/ring_attention.hpp"

namespace partrain::parallel {
namespace {
template <class T>
struct UlyssesState : models::LayerState {
  kernels::AttentionState<T> attn;  ///< over the whole sequence, this rank's H/cp heads
};

/// Between this rank's tokens of `parts` activations side by side ([B·Tl, parts·w], head columns) and the blocks an
/// all-to-all moves ([cp][B, Tl, parts, w/cp]: the block for rank k holds heads k·H/cp …).
template <class T>
void to_blocks(const View2<T>& x, const View1<T>& blocks, int cp, std::int64_t parts, std::int64_t wk, bool back) {
  auto X = x;
  auto Y = blocks;
  const std::int64_t rows = x.extent(0), w = wk * cp;
  Kokkos::parallel_for(
      "partrain::cp::ulysses_blocks", Kokkos::RangePolicy<ExecSpace>(0, rows), KOKKOS_LAMBDA(std::int64_t row) {
        for (int k = 0; k < cp; ++k)
          for (std::int64_t s = 0; s < parts; ++s)
            for (std::int64_t i = 0; i < wk; ++i) {
              const std::int64_t e = ((k * rows + row) * parts + s) * wk + i;
              if (back) X(row, s * w + k * wk + i) = Y(e);
              else Y(e) = X(row, s * w + k * wk + i);
            }
      });
}

/// Between the blocks received from every rank ([cp][B, Tl, parts, wk], rank k's tokens at positions k·Tl …) and the
/// whole sequences [B·T, parts·wk] of this rank's heads.
template <class T>
void to_sequences(const View1<T>& blocks, const View2<T>& full, int cp, std::int64_t Tl, std::int64_t parts,
                  std::int64_t wk, bool back) {
  auto X = full;
  auto Y = blocks;
  const std::int64_t T_ = Tl * cp, B = full.extent(0) / T_, rows = B * Tl;
  Kokkos::parallel_for(
      "partrain::cp::ulysses_sequences", Kokkos::RangePolicy<ExecSpace>(0, full.extent(0)), KOKKOS_LAMBDA(std::int64_t r) {
        const std::int64_t b = r / T_, t = r % T_, k = t / Tl, j = t % Tl;
        for (std::int64_t s = 0; s < parts; ++s)
          for (std::int64_t i = 0; i < wk; ++i) {
            const std::int64_t e = ((k * rows + b * Tl + j) * parts + s) * wk + i;
            if (back) Y(e) = X(r, s * wk + i);
            else X(r, s * wk + i) = Y(e);
          }
      });
}
}  // namespace

template <class T>
UlyssesAttention<T>::UlyssesAttention(CpContext& cp, std::int64_t heads, std::int64_t d, std::string name)
    : cp_(cp), heads_(heads), d_(d), name_(std::move(name)) {}

template <class T>
std::unique_ptr<models::LayerState> UlyssesAttention<T>::make_state(const std::string& prefix, std::int64_t B) const {
  auto st = std::make_unique<UlyssesState<T>>();
  st->attn = kernels::AttentionState<T>(prefix, B, cp_.layout.seq_len, heads_ / cp_.size(), d_);
  return st;
}

template <class T>
void UlyssesAttention<T>::ensure_scratch(std::int64_t B) {
  if (B == B_) return;
  B_ = B;
  const std::int64_t T_ = cp_.layout.seq_len, wk = heads_ / cp_.size() * d_;
  const std::string a = "act/" + name_ + ".ulysses";
  send_ = View1<T>(a + ".send", B * cp_.layout.local * 3 * heads_ * d_);
  recv_ = View1<T>(a + ".recv", B * cp_.layout.local * 3 * heads_ * d_);
  full_ = View2<T>(a + ".qkv", B * T_, 3 * wk);
  yfull_ = View2<T>(a + ".y", B * T_, wk);
}

template <class T>
void UlyssesAttention<T>::alltoall(const View1<T>& send, const View1<T>& recv, std::int64_t count) {
  const auto before = cp_.comm->counters()[coll::Op::Alltoall].bytes_sent;
  const double t0 = fenced_time_s();
  cp_.comm->alltoall(send.data(), recv.data(), count, cp_.algo).describe("ulysses all-to-all").wait();
  const double dt = wall_time_s() - t0;
  cp_.wait_s += dt;  // a blocking exchange: all of it exposed
  cp_.span_s += dt;
  cp_.bytes_sent += cp_.comm->counters()[coll::Op::Alltoall].bytes_sent - before;
}

template <class T>
void UlyssesAttention<T>::forward(const View2<T>& qkv, const View2<T>& out, models::LayerState& s) {
  auto& st = static_cast<UlyssesState<T>&>(s);
  const int p = cp_.size();
  const std::int64_t Tl = cp_.layout.local, B = std::int64_t(qkv.extent(0)) / Tl, wk = heads_ / p * d_;
  ensure_scratch(B);
  const double t0 = fenced_time_s();
  to_blocks(qkv, send_, p, 3, wk, false);
  alltoall(send_, recv_, B * Tl * 3 * wk);
  to_sequences(recv_, full_, p, Tl, 3, wk, false);
  kernels::attention_forward(kernels::as_sequences(full_, B, cp_.layout.seq_len),
                             kernels::as_sequences(yfull_, B, cp_.layout.seq_len), heads_ / p, st.attn);
  to_sequences(send_, yfull_, p, Tl, 1, wk, true);
  alltoall(send_, recv_, B * Tl * wk);
  to_blocks(out, recv_, p, 1, wk, true);
  cp_.attention_s += fenced_time_s() - t0;
  ++cp_.calls;
}

template <class T>
void UlyssesAttention<T>::backward(const View2<T>& dout, const View2<T>& dqkv, models::LayerState& s) {
  auto& st = static_cast<UlyssesState<T>&>(s);
  const int p = cp_.size();
  const std::int64_t Tl = cp_.layout.local, B = std::int64_t(dout.extent(0)) / Tl, wk = heads_ / p * d_;
  ensure_scratch(B);
  const double t0 = fenced_time_s();
  to_blocks(dout, send_, p, 1, wk, false);
  alltoall(send_, recv_, B * Tl * wk);
  to_sequences(recv_, yfull_, p, Tl, 1, wk, false);
  kernels::attention_backward(kernels::as_sequences(yfull_, B, cp_.layout.seq_len),
                              kernels::as_sequences(full_, B, cp_.layout.seq_len), heads_ / p, st.attn);
  to_sequences(send_, full_, p, Tl, 3, wk, true);
  alltoall(send_, recv_, B * Tl * 3 * wk);
  to_blocks(dqkv, recv_, p, 3, wk, true);
  cp_.attention_s += fenced_time_s() - t0;
  ++cp_.calls;
}

template <class T>
double UlyssesAttention<T>::replay_transfers(std::int64_t B) {
  ensure_scratch(B);
  const std::int64_t Tl = cp_.layout.local, wk = heads_ / cp_.size() * d_;
  const auto bytes = cp_.bytes_sent;
  const double wait0 = cp_.wait_s, span0 = cp_.span_s;
  const double t0 = fenced_time_s();
  for (std::int64_t parts : {3, 1, 1, 3}) alltoall(send_, recv_, B * Tl * parts * wk);
  const double t = fenced_time_s() - t0;
  cp_.bytes_sent = bytes;
  cp_.wait_s = wait0;
  cp_.span_s = span0;
  return t;
}

template <class T>
std::unique_ptr<ContextAttention<T>> make_context_attention(CpContext& cp, std::int64_t heads, std::int64_t d,
                                                            const std::string& name) {
  if (cp.kind == CpKind::Ulysses) return std::make_unique<UlyssesAttention<T>>(cp, heads, d, name);
  return std::make_unique<RingAttention<T>>(cp, heads, d, name);
}

template class UlyssesAttention<float>;
template class UlyssesAttention<double>;
template class UlyssesAttention<bf16>;
template class UlyssesAttention<fp16>;
template std::unique_ptr<ContextAttention<float>> make_context_attention(CpContext&, std::int64_t, std::int64_t, const std::string&);
template std::unique_ptr<ContextAttention<double>> make_context_attention(CpContext&, std::int64_t, std::int64_t, const std::string&);
template std::unique_ptr<ContextAttention<bf16>> make_context_attention(CpContext&, std::int64_t, std::int64_t, const std::string&);
template std::unique_ptr<ContextAttention<fp16>> make_context_attention(CpContext&, std::int64_t, std::int64_t, const std::string&);

}  // namespace partrain::parallel
