#include "partrain/parallel/nmt/executor.hpp"

#include <sched.h>

#include <algorithm>
#include <climits>

#include "partrain/core/error.hpp"
#include "partrain/core/timer.hpp"
#include "partrain/kernels/elementwise.hpp"
#include "partrain/kernels/embedding.hpp"
#include "partrain/kernels/linear.hpp"
#include "partrain/kernels/source_attention.hpp"

namespace partrain::parallel::nmt {
namespace {

using models::Init;
using models::NmtParams;
using models::ShardSpec;

template <class T>
View2<T> row_range(const View2<T>& v, std::int64_t r0, std::int64_t r1) {
  return Kokkos::subview(v, Kokkos::make_pair(r0, r1), Kokkos::ALL);
}

/// out rows = [a | b] rows.
template <class T>
void concat_rows(const View2<T>& a, const View2<T>& b, const View2<T>& out) {
  const std::int64_t p = a.extent(1), q = b.extent(1);
  Kokkos::parallel_for(
      "partrain::nmt::concat", Kokkos::RangePolicy<ExecSpace>(0, out.extent(0)), KOKKOS_LAMBDA(std::int64_t n) {
        for (std::int64_t j = 0; j < p; ++j) out(n, j) = a(n, j);
        for (std::int64_t j = 0; j < q; ++j) out(n, p + j) = b(n, j);
      });
}

/// a = in[:, 0:p], b = in[:, p:p+q].
template <class T>
void split_rows(const View2<T>& in, const View2<T>& a, const View2<T>& b) {
  const std::int64_t p = a.extent(1), q = b.extent(1);
  Kokkos::parallel_for(
      "partrain::nmt::split", Kokkos::RangePolicy<ExecSpace>(0, in.extent(0)), KOKKOS_LAMBDA(std::int64_t n) {
        for (std::int64_t j = 0; j < p; ++j) a(n, j) = in(n, j);
        for (std::int64_t j = 0; j < q; ++j) b(n, j) = in(n, p + j);
      });
}

/// out = rows of `table` (this rank's vocabulary rows [v0, v0 + rows)) for the ids it owns, zero for the others.
template <class T>
void shard_lookup(const IndexView1& ids, const View2<T>& table, std::int64_t v0, const View2<T>& out) {
  const std::int64_t Vl = table.extent(0), E = table.extent(1);
  Kokkos::parallel_for(
      "partrain::nmt::shard_lookup", Kokkos::RangePolicy<ExecSpace>(0, ids.extent(0)), KOKKOS_LAMBDA(std::int64_t n) {
        const std::int64_t id = ids(n) - v0;
        for (std::int64_t j = 0; j < E; ++j) out(n, j) = id >= 0 && id < Vl ? table(id, j) : T(0);
      });
}

/// dtable[id − v0] += dout[n] for the ids this rank owns (columns in parallel: a deterministic order).
template <class T>
void shard_scatter(const IndexView1& ids, const View2<T>& dout, std::int64_t v0, const View2<T>& dtable) {
  const std::int64_t Vl = dtable.extent(0), N = ids.extent(0);
  Kokkos::parallel_for(
      "partrain::nmt::shard_scatter", Kokkos::RangePolicy<ExecSpace>(0, dtable.extent(1)),
      KOKKOS_LAMBDA(std::int64_t c) {
        for (std::int64_t n = 0; n < N; ++n) {
          const std::int64_t id = ids(n) - v0;
          if (id >= 0 && id < Vl) dtable(id, c) = T(acc_t<T>(dtable(id, c)) + acc_t<T>(dout(n, c)));
        }
      });
}

inline void time_major(const IndexView1& in, std::int64_t B, std::int64_t S, const IndexView1& out) {
  Kokkos::parallel_for(
      "partrain::nmt::time_major", Kokkos::RangePolicy<ExecSpace>(0, B * S),
      KOKKOS_LAMBDA(std::int64_t n) { out(n) = in((n % B) * S + n / B); });
}
}  // namespace

// ---- the stage's parameters ----------------------------------------------------------------------------------

template <class T>
NmtStage<T>::NmtStage(const models::NmtConfig& c, const Placement& pl, int rank) : models::Model<T>("nmt", c.max_len) {
  using P = typename NmtParams<T>::P;
  const std::int64_t V = c.vocab, E = c.embed, H = c.hidden, k = pl.k(), Vl = V / k;
  auto add = [&](const std::string& name, std::vector<P> ps) {
    this->layers_.push_back(std::make_unique<NmtParams<T>>(name, std::move(ps)));
  };
  auto shard = [&](std::vector<std::int64_t> global) { return ShardSpec{std::move(global), 0, int(k), rank, 1}; };
  if (pl.src_rank() == rank) add("src_embed", {{"src_embed.weight", {V, E}, Init::normal(models::kNmtEmbedStd)}});
  for (const auto& u : pl.units()) {
    if (u.rank != rank || u.kind == UnitKind::Attention || u.kind == UnitKind::Dec) continue;
    const std::int64_t in = u.kind == UnitKind::Enc ? H : E, units = u.kind == UnitKind::Enc ? H : H / 2;
    add(u.name(), models::nmt_lstm_params<T>(u.name(), in, units));
  }
  add("tgt_embed", {{"tgt_embed.weight", {Vl, E}, Init::normal(models::kNmtEmbedStd), shard({V, E})}});
  for (const auto& u : pl.units())
    if (u.rank == rank && u.kind == UnitKind::Dec) add(u.name(), models::nmt_lstm_params<T>(u.name(), u.index == 0 ? E : 2 * H, H));
  add("generator", {{"generator.weight", {Vl, H}, Init::normal(1.0 / std::sqrt(double(H))), shard({V, H})},
                    {"generator.bias", {Vl}, Init::constant(0), shard({V})}});
}

// ---- the executor ----------------------------------------------------------------------------------------------

template <class T>
struct NmtExecutor<T>::Local {
  Unit u;
  int id = 0;
  std::vector<int> parts;  ///< input streams (−1: the target embedding y)
  std::vector<std::int64_t> widths;
  models::LstmSeq<T> lstm;
  View2<T> x, dx, out, dout;
  std::vector<View2<T>> dparts;  ///< per part: its gradient rows, contiguous (two parts)
  bool residual = false;
  View2<T> probs, dq, dkeys;  ///< attention
};

template <class T>
struct NmtExecutor<T>::Stream {
  int id = 0, producer_rank = 0;
  std::int64_t width = 0;
  View2<T> data;                          ///< the producer's output, or this rank's received copy
  std::vector<int> fwd_ids;               ///< per chunk (remote producer)
  std::vector<int> consumer_ranks;        ///< remote ranks that need the forward chunks (producer side)
  std::vector<int> consumers;             ///< consumer units in global order (U + 1: the generator)
  std::map<int, View2<T>> contrib;        ///< producer side: each consumer's gradient contribution
  std::map<int, std::vector<int>> contrib_ids;  ///< remote consumers' per-chunk receives
};

template <class T>
NmtExecutor<T>::NmtExecutor(const models::NmtConfig& c, const Placement& pl, coll::MpiCommunicator& mp,
                            NmtStage<T>& stage, std::int64_t B, std::int64_t chunk)
    : cfg_(c), pl_(pl), mp_(mp), stage_(stage), B_(B), S_(c.max_len), N_(c.max_len * B), chunk_(chunk),
      nchunks_((c.max_len + chunk - 1) / chunk), me_(mp.rank()) {
  group_.comm = &mp;
  group_.algo = coll::Algo::Auto;
  const auto& units = pl.units();
  const int U = int(units.size()), XS = U, GEN = U + 1;
  const std::int64_t E = c.embed, H = c.hidden, Le = c.enc_layers, Ld = c.dec_layers;
  {
    int flag = 0;
    int* ub = nullptr;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &ub, &flag);
    const long long max_tag = (long long)(U + 1) * nchunks_ + (long long)(U + 2) * (U + 2) * nchunks_;
    if (flag && ub && max_tag > *ub)
      input_error("nmt.time_chunk", std::to_string(chunk),
                  "gives " + std::to_string(nchunks_) + " chunks: the message tags would exceed MPI_TAG_UB = " + std::to_string(*ub));
  }
  auto unit_id = [&](UnitKind k, int i) {
    for (int u = 0; u < U; ++u)
      if (units[std::size_t(u)].kind == k && units[std::size_t(u)].index == i) return u;
    return -1;
  };
  const int bif = unit_id(UnitKind::BiFwd, 0), bib = unit_id(UnitKind::BiBwd, 0), att = unit_id(UnitKind::Attention, 0);
  const int enc_top = Le >= 2 ? unit_id(UnitKind::Enc, int(Le - 1)) : bif, dec0 = unit_id(UnitKind::Dec, 0);
  const int dec_top = unit_id(UnitKind::Dec, int(Ld - 1));
  // Streams: every unit's output and the source embedding, with their widths, producers and consumers.
  auto stream = [&](int id) -> Stream& {
    auto& s = streams_[id];
    if (!s) s = std::make_unique<Stream>(), s->id = id;
    return *s;
  };
  for (int u = 0; u < U; ++u) {
    const auto& un = units[std::size_t(u)];
    auto& s = stream(u);
    s.producer_rank = un.rank;
    s.width = un.kind == UnitKind::BiFwd || un.kind == UnitKind::BiBwd ? H / 2 : H;
  }
  auto& xs = stream(XS);
  xs.producer_rank = pl.src_rank();
  xs.width = E;
  xs.consumers = {bif, bib};
  stream(bif).consumers = {unit_id(UnitKind::Enc, 1)};
  stream(bib).consumers = {unit_id(UnitKind::Enc, 1)};
  for (std::int64_t i = 1; i < Le; ++i)
    stream(unit_id(UnitKind::Enc, int(i))).consumers = {i + 1 < Le ? unit_id(UnitKind::Enc, int(i + 1)) : att};
  stream(dec0).consumers = {att, Ld >= 2 ? unit_id(UnitKind::Dec, 1) : GEN};
  for (std::int64_t i = 1; i < Ld; ++i) {
    stream(att).consumers.push_back(unit_id(UnitKind::Dec, int(i)));
    stream(unit_id(UnitKind::Dec, int(i))).consumers = {i + 1 < Ld ? unit_id(UnitKind::Dec, int(i + 1)) : GEN};
  }
  auto rank_of = [&](int consumer) { return consumer == GEN ? -1 : units[std::size_t(consumer)].rank; };
  for (auto& [id, s] : streams_) {
    for (int cu : s->consumers) {
      if (cu == GEN) {  // every rank's generator shard reads the top decoder output
        for (int r = 0; r < pl.k(); ++r)
          if (r != s->producer_rank && std::find(s->consumer_ranks.begin(), s->consumer_ranks.end(), r) == s->consumer_ranks.end())
            s->consumer_ranks.push_back(r);
        continue;
      }
      const int r = rank_of(cu);
      if (r != s->producer_rank && std::find(s->consumer_ranks.begin(), s->consumer_ranks.end(), r) == s->consumer_ranks.end())
        s->consumer_ranks.push_back(r);
    }
  }
  // This rank's units and their buffers.
  auto act = [&](const std::string& n, std::int64_t cols) { return View2<T>("act/nmt." + n, N_, cols); };
  src_tm_ = IndexView1("act/nmt.src_tm", N_);
  dec_tm_ = IndexView1("act/nmt.dec_tm", N_);
  tgt_tm_ = IndexView1("act/nmt.tgt_tm", N_);
  y_ = act("y", E);
  dtop_ = act("dtop_grad", H);
  logits_ = act("logits", c.vocab / pl.k());
  losses_ = View1<acc_t<T>>("act/nmt.losses", N_);
  for (int u = 0; u < U; ++u) {
    const auto& un = units[std::size_t(u)];
    if (un.rank != me_) continue;
    auto l = std::make_unique<Local>();
    l->u = un;
    l->id = u;
    switch (un.kind) {
      case UnitKind::BiFwd:
      case UnitKind::BiBwd: l->parts = {XS}; break;
      case UnitKind::Enc: l->parts = un.index == 1 ? std::vector<int>{bif, bib} : std::vector<int>{unit_id(UnitKind::Enc, un.index - 1)}; break;
      case UnitKind::Dec: l->parts = un.index == 0 ? std::vector<int>{-1} : std::vector<int>{unit_id(UnitKind::Dec, un.index - 1), att}; break;
      case UnitKind::Attention: l->parts = {dec0, enc_top}; break;
    }
    for (int p : l->parts) l->widths.push_back(p == -1 ? E : stream(p).width);
    std::int64_t in = 0;
    for (auto w : l->widths) in += w;
    const std::string name = un.name();
    if (un.kind != UnitKind::Attention) {
      const std::int64_t units_n = stream(u).width;
      l->lstm.allocate("nmt." + name, B, S_, in, units_n, un.kind == UnitKind::BiBwd);
      l->lstm.bind(models::lstm_weights(stage.params(), name, false), models::lstm_weights(stage.params(), name, true));
      l->x = l->parts.size() == 2 ? act(name + ".x", in) : View2<T>();
      l->dx = act(name + ".dx", in);
      if (l->parts.size() == 2)
        for (auto w : l->widths) l->dparts.push_back(act(name + ".dpart", w));
      l->residual = (un.kind == UnitKind::Enc || un.kind == UnitKind::Dec) && un.index >= 2;
      l->out = l->residual ? act(name + ".out", units_n) : l->lstm.h();
    } else {
      l->probs = act("attention.probs", S_);
      l->dq = act("attention.dq", H);
      l->dkeys = act("attention.dkeys", H);
      l->out = act("attention.ctx", H);
    }
    l->dout = act(name + ".dout", stream(u).width);
    stream(u).data = l->out;
    locals_.push_back(std::move(l));
  }
  if (me_ == pl.src_rank()) {
    xs_ = act("xs", E);
    stream(XS).data = xs_;
  }
  // Receive buffers of streams this rank consumes from another rank; contribution buffers of streams it produces.
  std::vector<int> consumed;
  for (const auto& l : locals_)
    for (int p : l->parts)
      if (p >= 0) consumed.push_back(p);
  consumed.push_back(dec_top);  // the generator
  for (int id : consumed) {
    auto& s = stream(id);
    if (s.producer_rank != me_ && !s.data.size()) s.data = act("recv." + std::to_string(id), s.width);
  }
  for (auto& [id, s] : streams_) {
    if (s->producer_rank != me_) continue;
    for (int cu : s->consumers) s->contrib[cu] = act("contrib." + std::to_string(id) + "." + std::to_string(cu), s->width);
  }
}

template <class T>
NmtExecutor<T>::~NmtExecutor() = default;

template <class T>
std::pair<std::int64_t, std::int64_t> NmtExecutor<T>::rows_of(std::int64_t c) const {
  return {c * chunk_ * B_, std::min(S_, (c + 1) * chunk_) * B_};
}

template <class T>
int NmtExecutor<T>::ftag(int stream, std::int64_t chunk) const {
  return int(stream * nchunks_ + chunk);
}

template <class T>
int NmtExecutor<T>::btag(int stream, int consumer, std::int64_t chunk) const {
  const int U = int(pl_.units().size());
  return int((U + 1) * nchunks_ + (std::int64_t(stream) * (U + 2) + consumer) * nchunks_ + chunk);
}

template <class T>
void NmtExecutor<T>::send_rows(int /*stream*/, const View2<T>& src, std::int64_t chunk, int dest, int tag) {
  const auto [r0, r1] = rows_of(chunk);
  const std::int64_t w = src.extent(1);
  Kokkos::fence();
  sends_.push_back(mp_.send(src.data() + r0 * w, (r1 - r0) * w, coll::datatype_of<T>(), dest, tag));
}

template <class T>
void NmtExecutor<T>::wait_recv(int id, double& idle) {
  auto it = recvs_.find(id);
  if (it == recvs_.end()) return;
  const double t0 = wall_time_s(), since = coll::watchdog_now();
  for (unsigned i = 1;; ++i) {
    if (it->second.test()) break;
    for (auto& s : sends_) s.test();
    coll::idle();
    if (i % coll::kWatchdogEvery == 0) coll::watchdog_check(since, it->second.what(), it->second.peer());
  }
  idle += wall_time_s() - t0;
  recvs_.erase(it);
}

template <class T>
void NmtExecutor<T>::post_forward_receives() {
  for (auto& [id, s] : streams_) {
    s->fwd_ids.assign(std::size_t(nchunks_), -1);
    if (s->producer_rank == me_ || !s->data.size()) continue;
    for (std::int64_t c = 0; c < nchunks_; ++c) {
      const auto [r0, r1] = rows_of(c);
      const int rid = next_recv_++;
      recvs_.emplace(rid, mp_.recv(s->data.data() + r0 * s->width, (r1 - r0) * s->width, coll::datatype_of<T>(),
                                   s->producer_rank, ftag(id, c)));
      s->fwd_ids[std::size_t(c)] = rid;
    }
  }
}

template <class T>
void NmtExecutor<T>::post_backward_receives() {
  const int GEN = int(pl_.units().size()) + 1;
  for (auto& [id, s] : streams_) {
    if (s->producer_rank != me_) continue;
    s->contrib_ids.clear();
    for (int cu : s->consumers) {
      if (cu == GEN || pl_.units()[std::size_t(cu)].rank == me_) continue;
      const int from = pl_.units()[std::size_t(cu)].rank;
      auto& ids = s->contrib_ids[cu];
      auto& buf = s->contrib[cu];
      for (std::int64_t c = 0; c < nchunks_; ++c) {
        const auto [r0, r1] = rows_of(c);
        const int rid = next_recv_++;
        recvs_.emplace(rid, mp_.recv(buf.data() + r0 * s->width, (r1 - r0) * s->width, coll::datatype_of<T>(), from,
                                     btag(id, cu, c)));
        ids.push_back(rid);
      }
    }
  }
}

template <class T>
View2<T> NmtExecutor<T>::input_rows(int stream, std::int64_t chunk, StepTimes& t, bool) {
  auto& s = *streams_.at(stream);
  if (s.producer_rank != me_) wait_recv(s.fwd_ids[std::size_t(chunk)], t.idle_forward_s);
  return s.data;
}

template <class T>
void NmtExecutor<T>::forward_unit(Local& l, StepTimes& t) {
  const bool rev = l.u.kind == UnitKind::BiBwd;
  for (std::int64_t k = 0; k < nchunks_; ++k) {
    const std::int64_t c = rev ? nchunks_ - 1 - k : k;
    const auto [r0, r1] = rows_of(c);
    std::vector<View2<T>> in;
    for (int p : l.parts) in.push_back(p == -1 ? y_ : input_rows(p, c, t, true));
    const double c0 = fenced_time_s();
    View2<T> x = in[0];
    if (in.size() == 2) {
      concat_rows(row_range(in[0], r0, r1), row_range(in[1], r0, r1), row_range(l.x, r0, r1));
      x = l.x;
    }
    l.lstm.forward(x, lengths_, r0 / B_, r1 / B_);
    if (l.residual) {
      Kokkos::deep_copy(row_range(l.out, r0, r1), row_range(l.lstm.h(), r0, r1));
      kernels::add_into(row_range(l.out, r0, r1), row_range(in[0], r0, r1));
    }
    t.compute_s += fenced_time_s() - c0;
    for (int dest : streams_.at(l.id)->consumer_ranks) send_rows(l.id, l.out, c, dest, ftag(l.id, c));
  }
}

template <class T>
void NmtExecutor<T>::attention_forward(Local& l, StepTimes& t) {
  const int q = l.parts[0], keys = l.parts[1];
  for (std::int64_t c = 0; c < nchunks_; ++c) input_rows(keys, c, t, true);  // every encoder output first
  const auto K = streams_.at(keys)->data;
  for (std::int64_t c = 0; c < nchunks_; ++c) {
    const auto [r0, r1] = rows_of(c);
    const auto Q = input_rows(q, c, t, true);
    const double c0 = fenced_time_s();
    kernels::source_attention_forward(row_range(Q, r0, r1), K, lengths_, B_, row_range(l.probs, r0, r1),
                                      row_range(l.out, r0, r1));
    t.compute_s += fenced_time_s() - c0;
    for (int dest : streams_.at(l.id)->consumer_ranks) send_rows(l.id, l.out, c, dest, ftag(l.id, c));
  }
}

/// The unit's output gradient for one chunk: the consumers' contributions summed in global order.
template <class T>
static void gather_dout(std::int64_t r0, std::int64_t r1, const std::vector<View2<T>>& parts, const View2<T>& dout) {
  auto d = row_range(dout, r0, r1);
  Kokkos::deep_copy(d, row_range(parts[0], r0, r1));
  for (std::size_t i = 1; i < parts.size(); ++i) kernels::add_into(d, row_range(parts[i], r0, r1));
}

template <class T>
std::vector<View2<T>> NmtExecutor<T>::contributions(Stream& s, std::int64_t c, double& idle) {
  std::vector<View2<T>> out;
  for (int cu : s.consumers) {
    auto ids = s.contrib_ids.find(cu);
    if (ids != s.contrib_ids.end()) wait_recv(ids->second[std::size_t(c)], idle);
    out.push_back(s.contrib.at(cu));
  }
  return out;
}

template <class T>
void NmtExecutor<T>::backward_unit(Local& l, std::int64_t c, StepTimes& t) {
  const auto [r0, r1] = rows_of(c);
  const auto contribs = contributions(*streams_.at(l.id), c, t.idle_backward_s);
  const double c0 = fenced_time_s();
  gather_dout(r0, r1, contribs, l.dout);
  std::vector<View2<T>> in;
  for (int p : l.parts) in.push_back(p == -1 ? y_ : streams_.at(p)->data);
  const View2<T> x = in.size() == 2 ? l.x : in[0];
  l.lstm.backward(x, l.dout, lengths_, r0 / B_, r1 / B_, l.dx);
  std::vector<View2<T>> grads;
  if (l.parts.size() == 2) {
    split_rows(row_range(l.dx, r0, r1), row_range(l.dparts[0], r0, r1), row_range(l.dparts[1], r0, r1));
    grads = l.dparts;
  } else {
    grads = {l.dx};
  }
  if (l.residual) kernels::add_into(row_range(grads[0], r0, r1), row_range(l.dout, r0, r1));
  t.compute_s += fenced_time_s() - c0;
  for (std::size_t k = 0; k < l.parts.size(); ++k) {
    const int p = l.parts[k];
    if (p == -1) continue;  // the target embedding's gradient stays in dx (broadcast at the end)
    auto& ps = *streams_.at(p);
    if (ps.producer_rank == me_) Kokkos::deep_copy(row_range(ps.contrib.at(l.id), r0, r1), row_range(grads[k], r0, r1));
    else send_rows(p, grads[k], c, ps.producer_rank, btag(p, l.id, c));
  }
}

template <class T>
void NmtExecutor<T>::attention_backward_chunk(Local& l, std::int64_t c, StepTimes& t) {
  const auto [r0, r1] = rows_of(c);
  const auto contribs = contributions(*streams_.at(l.id), c, t.idle_backward_s);
  const double c0 = fenced_time_s();
  gather_dout(r0, r1, contribs, l.dout);
  const int q = l.parts[0], keys = l.parts[1];
  kernels::source_attention_backward(row_range(l.dout, r0, r1), row_range(streams_.at(q)->data, r0, r1),
                                     streams_.at(keys)->data, lengths_, B_, row_range(l.probs, r0, r1),
                                     row_range(l.dq, r0, r1), l.dkeys);
  // dq is the attention's contribution to the bottom decoder layer's output gradient (the same rank).
  Kokkos::deep_copy(row_range(streams_.at(q)->contrib.at(l.id), r0, r1), row_range(l.dq, r0, r1));
  t.compute_s += fenced_time_s() - c0;
}

template <class T>
double NmtExecutor<T>::step(const models::Batch<T>& batch, double loss_scale, bool backward, StepTimes& t) {
  const auto& ps = stage_.params();
  const auto& units = pl_.units();
  const int U = int(units.size()), XS = U, GEN = U + 1;
  const std::int64_t k = pl_.k(), Vl = cfg_.vocab / k, v0 = me_ * Vl;
  lengths_ = batch.lengths;
  time_major(batch.tokens, B_, S_, src_tm_);
  time_major(batch.dec_tokens, B_, S_, dec_tm_);
  time_major(batch.targets, B_, S_, tgt_tm_);
  sends_.clear();
  const double f0 = fenced_time_s();
  post_forward_receives();
  // Target embedding: each rank looks up its vocabulary rows, the group sums.
  double c0 = fenced_time_s();
  shard_lookup(dec_tm_, ps.param2("tgt_embed.weight"), v0, y_);
  t.compute_s += fenced_time_s() - c0;
  c0 = fenced_time_s();
  if (k > 1) mp_.allreduce(y_.data(), y_.data(), std::int64_t(y_.size()), coll::datatype_of<T>(), coll::ReduceOp::Sum).wait();
  t.group_comm_s += fenced_time_s() - c0;
  if (me_ == pl_.src_rank()) {
    c0 = fenced_time_s();
    kernels::embedding_forward(src_tm_, ps.param2("src_embed.weight"), xs_);
    t.compute_s += fenced_time_s() - c0;
    for (int dest : streams_.at(XS)->consumer_ranks)
      for (std::int64_t c = 0; c < nchunks_; ++c) send_rows(XS, xs_, c, dest, ftag(XS, c));
  }
  for (auto& l : locals_) {
    if (l->u.kind == UnitKind::Attention) attention_forward(*l, t);
    else forward_unit(*l, t);
  }
  // Generator: this rank's vocabulary shard of the logits over every row, then the group's cross-entropy.
  int top = U - 1;  // the top decoder layer: the last Dec unit in global order
  for (int u = U - 1; u >= 0; --u)
    if (units[std::size_t(u)].kind == UnitKind::Dec) {
      top = u;
      break;
    }
  for (std::int64_t c = 0; c < nchunks_; ++c) input_rows(top, c, t, true);
  const View2<T> dtop = streams_.at(top)->data;
  c0 = fenced_time_s();
  kernels::linear_forward(dtop, ps.param2("generator.weight"), ps.flat_param("generator.bias"), logits_);
  t.compute_s += fenced_time_s() - c0;
  c0 = fenced_time_s();
  const double loss = ce_(group_, logits_, tgt_tm_, acc_t<T>(loss_scale), losses_, backward ? &logits_ : nullptr);
  t.group_comm_s += fenced_time_s() - c0;  // the three [N] reductions dominate; the local sums are small
  t.forward_s = fenced_time_s() - f0;
  if (!backward) {
    for (auto& r : recvs_) r.second.wait();
    recvs_.clear();
    wait_all(sends_);
    return loss;
  }

  const double b0 = fenced_time_s();
  post_backward_receives();
  c0 = fenced_time_s();
  kernels::linear_backward(logits_, dtop, ps.param2("generator.weight"), dtop_, ps.grad2("generator.weight"),
                           ps.flat_grad("generator.bias"));
  t.compute_s += fenced_time_s() - c0;
  c0 = fenced_time_s();
  if (k > 1) mp_.allreduce(dtop_.data(), dtop_.data(), std::int64_t(dtop_.size()), coll::datatype_of<T>(), coll::ReduceOp::Sum).wait();
  t.group_comm_s += fenced_time_s() - c0;
  if (units[std::size_t(top)].rank == me_) Kokkos::deep_copy(streams_.at(top)->contrib.at(GEN), dtop_);
  // This rank's units in reverse global order; the attention and the bottom decoder layer chunk by chunk.
  Local* att = nullptr;
  Local* dec0 = nullptr;
  for (auto& l : locals_) {
    if (l->u.kind == UnitKind::Attention) att = l.get();
    if (l->u.kind == UnitKind::Dec && l->u.index == 0) dec0 = l.get();
  }
  for (auto it = locals_.rbegin(); it != locals_.rend(); ++it) {
    Local& l = **it;
    if (l.u.kind == UnitKind::Attention) continue;
    if (&l == dec0) {
      Kokkos::deep_copy(att->dkeys, T(0));
      l.lstm.begin_backward();
      for (std::int64_t c = nchunks_ - 1; c >= 0; --c) {
        attention_backward_chunk(*att, c, t);
        backward_unit(l, c, t);
      }
      // dK: the attention's contribution to the top encoder layer's output gradient.
      auto& ks = *streams_.at(att->parts[1]);
      if (ks.producer_rank == me_) Kokkos::deep_copy(ks.contrib.at(att->id), att->dkeys);
      else
        for (std::int64_t c = nchunks_ - 1; c >= 0; --c) send_rows(att->parts[1], att->dkeys, c, ks.producer_rank, btag(att->parts[1], att->id, c));
      continue;
    }
    l.lstm.begin_backward();
    const bool rev = l.u.kind == UnitKind::BiBwd;
    for (std::int64_t kk = 0; kk < nchunks_; ++kk) backward_unit(l, rev ? kk : nchunks_ - 1 - kk, t);
  }
  // Source embedding: the two directions' input gradients.
  if (me_ == pl_.src_rank()) {
    auto& s = *streams_.at(XS);
    std::vector<View2<T>> contribs;
    for (int cu : s.consumers) {
      auto ids = s.contrib_ids.find(cu);
      if (ids != s.contrib_ids.end())
        for (int rid : ids->second) wait_recv(rid, t.idle_backward_s);
      contribs.push_back(s.contrib.at(cu));
    }
    c0 = fenced_time_s();
    gather_dout<T>(0, N_, contribs, xs_);  // xs_ is no longer needed: it holds dxs now
    kernels::embedding_backward(src_tm_, xs_, ps.grad2("src_embed.weight"));
    t.compute_s += fenced_time_s() - c0;
  }
  // Target embedding: the bottom decoder layer's input gradient to every rank, each scatters its rows.
  c0 = fenced_time_s();
  const int dec0_rank = pl_.rank_of_dec(0);
  if (me_ == dec0_rank) Kokkos::deep_copy(y_, dec0->dx);
  if (k > 1) mp_.broadcast(y_.data(), std::int64_t(y_.size()), coll::datatype_of<T>(), dec0_rank).wait();
  t.group_comm_s += fenced_time_s() - c0;
  c0 = fenced_time_s();
  shard_scatter(dec_tm_, y_, v0, ps.grad2("tgt_embed.weight"));
  t.compute_s += fenced_time_s() - c0;
  if (!sends_.empty()) {  // alone (k = 1) nothing was sent, and nothing is waited for: idle stays exactly 0
    const double w0 = wall_time_s();
    wait_all(sends_);
    t.idle_backward_s += wall_time_s() - w0;
  }
  t.backward_s = fenced_time_s() - b0;
  return loss;
}

template class NmtStage<float>;
template class NmtStage<double>;
template class NmtStage<bf16>;
template class NmtStage<fp16>;
template class NmtExecutor<float>;
template class NmtExecutor<double>;
template class NmtExecutor<bf16>;
template class NmtExecutor<fp16>;

}  // namespace partrain::parallel::nmt
