#include "partrain/parallel/tp/gpt.hpp"

#include <cmath>

#include "partrain/core/error.hpp"
#include "partrain/kernels/activation.hpp"
#include "partrain/kernels/elementwise.hpp"
#include "partrain/kernels/layernorm.hpp"
#include "partrain/parallel/tp/gpt_layers.hpp"

namespace partrain::parallel {
namespace {
constexpr double kInitStd = 0.02;

/// The same view, or a [rows, cols] buffer kept in `slot` (grown on first need).
template <class T>
View2<T> buffer(View2<T>& slot, const std::string& label, std::int64_t rows, std::int64_t cols) {
  if (std::int64_t(slot.extent(0)) != rows || std::int64_t(slot.extent(1)) != cols) slot = View2<T>(label, rows, cols);
  return slot;
}

template <class T>
struct TpBlockState : models::LayerState {
  View2<T> ln1, ln1_full, qkv, atty, res1, ln2, ln2_full, fc, fcg;
  View1<acc_t<T>> mean1, rstd1, mean2, rstd2;
  kernels::AttentionState<T> attn;
  std::unique_ptr<models::LayerState> cp_attn;  ///< context-parallel attention's, instead of attn
};

template <class T>
struct TpHeadState : models::LayerState {
  View2<T> ln, ln_full;
  View1<acc_t<T>> mean, rstd;
};
}  // namespace

// ---- vocabulary-parallel embedding ------------------------------------------------------------------------------

template <class T>
void TpEmbedding<T>::declare(models::ParamStore<T>& ps) {
  const int t = tp_.size();
  ps.declare("wte", {cfg_.vocab / t, cfg_.channels}, models::Init::normal(kInitStd),
             models::ShardSpec{{cfg_.vocab, cfg_.channels}, 0, t, tp_.rank(), 1});
  ps.declare("wpe", {cfg_.seq_len, cfg_.channels}, models::Init::normal(kInitStd));
}

template <class T>
void TpEmbedding<T>::bind(const models::ParamStore<T>& ps) {
  wte_ = ps.param2("wte");
  wpe_ = ps.param2("wpe");
  dwte_ = ps.grad2("wte");
  dwpe_ = ps.grad2("wpe");
}

template <class T>
IndexView1 TpEmbedding<T>::local_tokens(const IndexView1& tokens) {
  if (tp_.cp_size() == 1) return tokens;
  if (std::int64_t(tokens_.extent(0)) != cp_rows(tp_, std::int64_t(tokens.extent(0))))
    tokens_ = IndexView1("act/embedding.cp_tokens", cp_rows(tp_, std::int64_t(tokens.extent(0))));
  cp_local_ids(tp_.cp->layout, tokens, tokens_);
  return tokens_;
}

template <class T>
void TpEmbedding<T>::forward(const models::Batch<T>& batch, const View2<T>&, const View2<T>& y, models::LayerState&) {
  const std::int64_t N = cp_rows(tp_, std::int64_t(batch.tokens.extent(0))), C = cfg_.channels, Vl = cfg_.vocab / tp_.size();
  const std::int64_t v0 = tp_.rank() * Vl;
  View2<T> all = tp_.sequence_parallel ? buffer(full_, "act/embedding.full", N, C) : y;
  auto tok = local_tokens(batch.tokens);
  auto wte = wte_;
  Kokkos::parallel_for(
      "partrain::tp::embedding_lookup", Kokkos::RangePolicy<ExecSpace>(0, N), KOKKOS_LAMBDA(std::int64_t n) {
        const std::int64_t id = tok(n) - v0;
        const bool mine = id >= 0 && id < Vl;
        for (std::int64_t c = 0; c < C; ++c) all(n, c) = mine ? wte(id, c) : T(0);
      });
  if (tp_.sequence_parallel) tp_reduce_scatter_rows(tp_, all, y);
  else tp_allreduce(tp_, y);
  const std::int64_t off = tp_.sequence_parallel ? tp_.rank() * std::int64_t(y.extent(0)) : 0;
  const CpLayout lay = layout_of(tp_, cfg_.seq_len);  // row off + r is token (off + r) mod Tl of its sequence
  const std::int64_t Tl = lay.local;
  auto wpe = wpe_;
  Kokkos::parallel_for(
      "partrain::tp::position_add", Kokkos::RangePolicy<ExecSpace>(0, y.extent(0)), KOKKOS_LAMBDA(std::int64_t r) {
        const std::int64_t t = lay.position((off + r) % Tl);
        for (std::int64_t c = 0; c < C; ++c) y(r, c) = acc_t<T>(y(r, c)) + acc_t<T>(wpe(t, c));
      });
}

template <class T>
void TpEmbedding<T>::backward(const models::Batch<T>& batch, const View2<T>&, const View2<T>& dy, const View2<T>&,
                              models::LayerState&) {
  const std::int64_t N = cp_rows(tp_, std::int64_t(batch.tokens.extent(0))), C = cfg_.channels, Vl = cfg_.vocab / tp_.size();
  const std::int64_t v0 = tp_.rank() * Vl, Tn = cfg_.seq_len, R = std::int64_t(dy.extent(0));
  const std::int64_t off = tp_.sequence_parallel ? tp_.rank() * R : 0;
  // position t is local token jt of every sequence (none of them when another context-parallel rank holds it)
  const CpLayout lay = layout_of(tp_, Tn);
  const std::int64_t Tl = lay.local;
  auto dwpe = dwpe_;
  if constexpr (is_half_v<T>) {  // 16-bit gradients summed in fp32, stored once per element (docs/precision.md)
    Kokkos::parallel_for(
        "partrain::tp::position_backward_fp32", Kokkos::RangePolicy<ExecSpace>(0, Tn), KOKKOS_LAMBDA(std::int64_t t) {
          const std::int64_t jt = lay.local_index(t);
          if (jt < 0) return;
          for (std::int64_t c = 0; c < C; ++c) {
            float acc = dwpe(t, c);
            for (std::int64_t r = ((jt - off) % Tl + Tl) % Tl; r < R; r += Tl) acc += float(dy(r, c));
            dwpe(t, c) = acc;
          }
        });
  } else {
    Kokkos::parallel_for(
        "partrain::tp::position_backward", Kokkos::RangePolicy<ExecSpace>(0, Tn), KOKKOS_LAMBDA(std::int64_t t) {
          const std::int64_t jt = lay.local_index(t);
          if (jt < 0) return;
          for (std::int64_t r = ((jt - off) % Tl + Tl) % Tl; r < R; r += Tl)
            for (std::int64_t c = 0; c < C; ++c) dwpe(t, c) += dy(r, c);
        });
  }
  View2<T> all = dy;
  if (tp_.sequence_parallel) {
    all = buffer(full_, "act/embedding.full", N, C);
    tp_allgather_rows(tp_, dy, all);
  }
  auto tok = local_tokens(batch.tokens);
  auto dwte = dwte_;
  if constexpr (is_half_v<T>) {  // this rank's rows of the table summed in an fp32 scratch, stored once
    View2<float> sum("act/embedding.grad_fp32", Vl, C);
    Kokkos::parallel_for(
        "partrain::tp::embedding_backward_fp32", Kokkos::RangePolicy<ExecSpace>(0, C), KOKKOS_LAMBDA(std::int64_t c) {
          for (std::int64_t n = 0; n < N; ++n) {
            const std::int64_t id = tok(n) - v0;
            if (id >= 0 && id < Vl) sum(id, c) += float(all(n, c));
          }
          for (std::int64_t v = 0; v < Vl; ++v)
            if (sum(v, c) != 0.0f) dwte(v, c) = float(dwte(v, c)) + sum(v, c);
        });
  } else {
    Kokkos::parallel_for(
        "partrain::tp::embedding_backward", Kokkos::RangePolicy<ExecSpace>(0, C), KOKKOS_LAMBDA(std::int64_t c) {
          for (std::int64_t n = 0; n < N; ++n) {
            const std::int64_t id = tok(n) - v0;
            if (id >= 0 && id < Vl) dwte(id, c) += all(n, c);
          }
        });
  }
}

// ---- tensor-parallel block --------------------------------------------------------------------------------------

template <class T>
TpBlock<T>::TpBlock(const models::GptConfig& c, int index, TpContext& tp)
    : cfg_(c),
      index_(index),
      tp_(tp),
      qkv_(name() + ".attn.qkv", c.channels, 3 * c.channels, 3, tp),
      fc_(name() + ".mlp.fc", c.channels, 4 * c.channels, 1, tp),
      proj_(name() + ".attn.proj", c.channels, c.channels, tp),
      mproj_(name() + ".mlp.proj", 4 * c.channels, c.channels, tp) {
  if (tp.cp_size() > 1)
    cp_attn_ = make_context_attention<T>(*tp.cp, c.heads / tp.size(), c.channels / c.heads, name() + ".attn");
}

template <class T>
void TpBlock<T>::declare(models::ParamStore<T>& ps) {
  const auto C = cfg_.channels;
  const double proj_std = kInitStd / std::sqrt(2.0 * double(cfg_.layers));
  ps.declare(name() + ".ln1.weight", {C}, models::Init::constant(1.0));
  ps.declare(name() + ".ln1.bias", {C}, models::Init::constant(0.0));
  qkv_.declare(ps, kInitStd);
  proj_.declare(ps, proj_std);
  ps.declare(name() + ".ln2.weight", {C}, models::Init::constant(1.0));
  ps.declare(name() + ".ln2.bias", {C}, models::Init::constant(0.0));
  fc_.declare(ps, kInitStd);
  mproj_.declare(ps, proj_std);
}

template <class T>
void TpBlock<T>::bind(const models::ParamStore<T>& ps) {
  ln1_w_ = ps.flat_param(name() + ".ln1.weight");
  ln1_b_ = ps.flat_param(name() + ".ln1.bias");
  ln2_w_ = ps.flat_param(name() + ".ln2.weight");
  ln2_b_ = ps.flat_param(name() + ".ln2.bias");
  dln1_w_ = ps.flat_grad(name() + ".ln1.weight");
  dln1_b_ = ps.flat_grad(name() + ".ln1.bias");
  dln2_w_ = ps.flat_grad(name() + ".ln2.weight");
  dln2_b_ = ps.flat_grad(name() + ".ln2.bias");
  qkv_.bind(ps);
  proj_.bind(ps);
  fc_.bind(ps);
  mproj_.bind(ps);
}

template <class T>
std::unique_ptr<models::LayerState> TpBlock<T>::make_state(std::int64_t rows) const {
  const auto C = cfg_.channels, t = std::int64_t(tp_.size()), rl = local_rows(tp_, rows);
  const std::string a = "act/" + name();
  const std::int64_t B = rows / cfg_.seq_len;
  rows = cp_rows(tp_, rows);  // the rows of this rank's tokens, whole over the tensor-parallel group
  auto st = std::make_unique<TpBlockState<T>>();
  st->ln1 = View2<T>(a + ".ln1", rl, C);
  st->ln1_full = tp_.sequence_parallel ? View2<T>(a + ".ln1_full", rows, C) : st->ln1;
  st->qkv = View2<T>(a + ".qkv", rows, 3 * C / t);
  st->atty = View2<T>(a + ".atty", rows, C / t);
  st->res1 = View2<T>(a + ".res1", rl, C);
  st->ln2 = View2<T>(a + ".ln2", rl, C);
  st->ln2_full = tp_.sequence_parallel ? View2<T>(a + ".ln2_full", rows, C) : st->ln2;
  st->fc = View2<T>(a + ".fc", rows, 4 * C / t);
  st->fcg = View2<T>(a + ".fcg", rows, 4 * C / t);
  st->mean1 = View1<acc_t<T>>(a + ".mean1", rl);
  st->rstd1 = View1<acc_t<T>>(a + ".rstd1", rl);
  st->mean2 = View1<acc_t<T>>(a + ".mean2", rl);
  st->rstd2 = View1<acc_t<T>>(a + ".rstd2", rl);
  if (cp_attn_) st->cp_attn = cp_attn_->make_state(a + ".attn", B);
  else st->attn = kernels::AttentionState<T>(a + ".attn", B, cfg_.seq_len, cfg_.heads / t, C / cfg_.heads);
  return st;
}

template <class T>
void TpBlock<T>::ensure_scratch(std::int64_t rows) {
  const auto C = cfg_.channels, t = std::int64_t(tp_.size());
  const std::string a = "act/" + name() + ".scratch";
  const auto dln_rows = local_rows(tp_, rows);
  rows = cp_rows(tp_, rows);
  buffer(full_a_, a + ".full_a", rows, C);
  buffer(full_b_, a + ".full_b", rows, C);
  buffer(wide_, a + ".wide", rows, 4 * C / t);
  buffer(dqkv_, a + ".qkv", rows, 3 * C / t);
  buffer(datty_, a + ".atty", rows, C / t);
  buffer(dln_, a + ".ln", dln_rows, C);
}

template <class T>
void TpBlock<T>::forward(const models::Batch<T>& batch, const View2<T>& x, const View2<T>& y, models::LayerState& s) {
  auto& st = static_cast<TpBlockState<T>&>(s);
  const std::int64_t N = std::int64_t(batch.tokens.extent(0)), Tn = cfg_.seq_len, B = N / Tn;
  const std::int64_t hl = cfg_.heads / tp_.size();
  ensure_scratch(N);
  tp_.in_block = true;
  kernels::layernorm_forward(x, ln1_w_, ln1_b_, st.ln1, st.mean1, st.rstd1);
  qkv_.forward(st.ln1, st.ln1_full, st.qkv);
  if (cp_attn_) cp_attn_->forward(st.qkv, st.atty, *st.cp_attn);
  else kernels::attention_forward(kernels::as_sequences(st.qkv, B, Tn), kernels::as_sequences(st.atty, B, Tn), hl, st.attn);
  proj_.forward(st.atty, tp_.sequence_parallel ? full_a_ : st.res1, st.res1);
  kernels::add_into(st.res1, x);
  kernels::layernorm_forward(st.res1, ln2_w_, ln2_b_, st.ln2, st.mean2, st.rstd2);
  fc_.forward(st.ln2, st.ln2_full, st.fc);
  kernels::gelu_forward(kernels::flat(st.fc), kernels::flat(st.fcg));
  mproj_.forward(st.fcg, tp_.sequence_parallel ? full_a_ : y, y);
  kernels::add_into(y, st.res1);
  tp_.in_block = false;
}

template <class T>
void TpBlock<T>::backward(const models::Batch<T>& batch, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                          models::LayerState& s) {
  auto& st = static_cast<TpBlockState<T>&>(s);
  const std::int64_t N = std::int64_t(batch.tokens.extent(0)), Tn = cfg_.seq_len, B = N / Tn;
  const std::int64_t hl = cfg_.heads / tp_.size();
  const bool sp = tp_.sequence_parallel;
  ensure_scratch(N);
  tp_.in_block = true;
  // MLP branch; dy then becomes the gradient of res1
  mproj_.backward(dy, sp ? full_a_ : dy, st.fcg, wide_);
  kernels::gelu_backward(kernels::flat(st.fc), kernels::flat(wide_), kernels::flat(wide_));
  fc_.backward(wide_, st.ln2_full, sp ? full_b_ : dln_, dln_);
  kernels::layernorm_backward(dln_, st.res1, ln2_w_, st.mean2, st.rstd2, dy, dln2_w_, dln2_b_);
  // attention branch
  proj_.backward(dy, sp ? full_a_ : dy, st.atty, datty_);
  if (cp_attn_) cp_attn_->backward(datty_, dqkv_, *st.cp_attn);
  else kernels::attention_backward(kernels::as_sequences(datty_, B, Tn), kernels::as_sequences(dqkv_, B, Tn), hl, st.attn);
  qkv_.backward(dqkv_, st.ln1_full, sp ? full_b_ : dln_, dln_);
  Kokkos::deep_copy(dx, dy);
  kernels::layernorm_backward(dln_, x, ln1_w_, st.mean1, st.rstd1, dx, dln1_w_, dln1_b_);
  tp_.in_block = false;
}

template <class T>
double TpBlock<T>::forward_flops(std::int64_t rows) const {
  const double N = double(cp_rows(tp_, rows)), C = double(cfg_.channels), t = double(tp_.size());
  return (24.0 * N * C * C + 4.0 * N * double(cfg_.seq_len) * C) / t;
}

// ---- head (ln_f + tied, vocabulary-parallel LM head) ------------------------------------------------------------

template <class T>
void TpHead<T>::declare(models::ParamStore<T>& ps) {
  ps.declare("ln_f.weight", {cfg_.channels}, models::Init::constant(1.0));
  ps.declare("ln_f.bias", {cfg_.channels}, models::Init::constant(0.0));
}

template <class T>
void TpHead<T>::bind(const models::ParamStore<T>& ps) {
  wte_ = ps.param2("wte");
  dwte_ = ps.grad2("wte");
  w_ = ps.flat_param("ln_f.weight");
  b_ = ps.flat_param("ln_f.bias");
  dw_ = ps.flat_grad("ln_f.weight");
  db_ = ps.flat_grad("ln_f.bias");
}

template <class T>
std::unique_ptr<models::LayerState> TpHead<T>::make_state(std::int64_t rows) const {
  auto st = std::make_unique<TpHeadState<T>>();
  const auto rl = local_rows(tp_, rows);
  st->ln = View2<T>("act/head.ln", rl, cfg_.channels);
  st->ln_full = tp_.sequence_parallel ? View2<T>("act/head.ln_full", cp_rows(tp_, rows), cfg_.channels) : st->ln;
  st->mean = View1<acc_t<T>>("act/head.mean", rl);
  st->rstd = View1<acc_t<T>>("act/head.rstd", rl);
  return st;
}

template <class T>
void TpHead<T>::forward(const models::Batch<T>&, const View2<T>& x, const View2<T>& y, models::LayerState& s) {
  auto& st = static_cast<TpHeadState<T>&>(s);
  kernels::layernorm_forward(x, w_, b_, st.ln, st.mean, st.rstd);
  if (tp_.sequence_parallel) tp_allgather_rows(tp_, st.ln, st.ln_full);
  kernels::gemm('N', 'T', T(1), st.ln_full, wte_, T(0), y);
}

template <class T>
void TpHead<T>::backward(const models::Batch<T>&, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                         models::LayerState& s) {
  auto& st = static_cast<TpHeadState<T>&>(s);
  const std::int64_t N = std::int64_t(dy.extent(0)), C = cfg_.channels;
  buffer(dln_full_, "act/head.scratch_full", N, C);
  kernels::gemm('N', 'N', T(1), dy, wte_, T(0), dln_full_);
  kernels::gemm('T', 'N', T(1), dy, st.ln_full, T(1), dwte_);
  View2<T> dln = dln_full_;
  if (tp_.sequence_parallel) {
    dln = buffer(dln_, "act/head.scratch", std::int64_t(x.extent(0)), C);
    tp_reduce_scatter_rows(tp_, dln_full_, dln);
  } else {
    tp_allreduce(tp_, dln_full_);
  }
  Kokkos::deep_copy(dx, T(0));
  kernels::layernorm_backward(dln, x, w_, st.mean, st.rstd, dx, dw_, db_);
}

// ---- model ------------------------------------------------------------------------------------------------------

template <class T>
TpGpt<T>::TpGpt(const models::GptConfig& cfg, TpContext& tp) : models::Model<T>("gpt", cfg.seq_len), cfg_(cfg), tp_(tp) {
  check_tp_shapes(cfg, tp.size());
  this->layers_.push_back(std::make_unique<TpEmbedding<T>>(cfg, tp));
  for (int l = 0; l < cfg.layers; ++l) this->layers_.push_back(std::make_unique<TpBlock<T>>(cfg, l, tp));
  this->layers_.push_back(std::make_unique<TpHead<T>>(cfg, tp));
}

template <class T>
double TpGpt<T>::parallel_cross_entropy(const View2<T>& z, const IndexView1& targets, acc_t<T> scale, const View1<acc_t<T>>& losses,
                                        const View2<T>* dz) {
  if (tp_.cp_size() == 1) return ce_(tp_, z, targets, scale, losses, dz);
  if (targets_.extent(0) != z.extent(0)) targets_ = IndexView1("act/head.cp_targets", z.extent(0));
  cp_local_ids(tp_.cp->layout, targets, targets_);
  return ce_(tp_, z, targets_, scale, losses, dz);
}

template <class T>
double TpGpt<T>::loss(const View2<T>& logits, const IndexView1& targets, const View1<acc_t<T>>& losses) {
  return parallel_cross_entropy(logits, targets, T(0), losses, nullptr);
}

template <class T>
double TpGpt<T>::loss_and_grad(const View2<T>& logits, const IndexView1& targets, acc_t<T> scale, const View1<acc_t<T>>& losses,
                               const View2<T>& dlogits) {
  return parallel_cross_entropy(logits, targets, scale, losses, &dlogits);
}

template <class T>
void TpGpt<T>::finalize_grads_in(models::ParamStore<T>& ps) {
  if (!tp_.sequence_parallel || tp_.size() == 1) return;
  for (const auto& p : ps.infos())  // replicated parameters saw only this rank's rows
    if (!p.shard.sharded()) {
      View2<T> g(ps.grads().data() + p.offset, p.size, 1);
      tp_allreduce(tp_, g);
    }
}

template <class T>
void TpGpt<T>::finalize_grads_wide(const models::ParamStore<T>& ps, const View1<acc_t<T>>& grads) {
  if (!tp_.sequence_parallel || tp_.size() == 1) return;
  for (const auto& p : ps.infos())  // as finalize_grads_in, on the fp32 copy the optimizer reads
    if (!p.shard.sharded()) {
      View2<acc_t<T>> g(grads.data() + p.offset, p.size, 1);
      tp_allreduce(tp_, g);
    }
}

template <class T>
std::vector<std::pair<models::ParamInfo, std::vector<double>>> gather_full(const models::ParamStore<T>& ps,
                                                                           TpContext& tp, bool grads) {
  return gather_full_values(ps, tp, grads ? ps.grads() : ps.params());
}

template <class T, class V>
std::vector<std::pair<models::ParamInfo, std::vector<double>>> gather_full_values(const models::ParamStore<T>& ps,
                                                                                  TpContext& tp, const V& values) {
  using E = typename V::non_const_value_type;
  std::vector<std::pair<models::ParamInfo, std::vector<double>>> out;
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), values);
  const int t = tp.size();
  for (const auto& p : ps.infos()) {
    models::ParamInfo g = p;
    g.shape = p.shard.global_shape;
    std::int64_t total = 1;
    for (auto d : g.shape) total *= d;
    g.size = total;
    std::vector<double> full(static_cast<std::size_t>(total));
    if (!p.shard.sharded()) {
      for (std::int64_t i = 0; i < p.size; ++i) full[std::size_t(i)] = double(host.data()[p.offset + i]);
    } else {
      std::vector<E> all(static_cast<std::size_t>(p.size * t));
      MPI_Request req;
      MPI_Iallgather(host.data() + p.offset, int(p.size * std::int64_t(sizeof(E))), MPI_BYTE, all.data(),
                     int(p.size * std::int64_t(sizeof(E))), MPI_BYTE, tp.comm->comm(), &req);
      coll::wait(req);
      for (int k = 0; k < t; ++k) {
        models::ShardSpec spec = p.shard;
        spec.index = k;
        for (std::int64_t i = 0; i < p.size; ++i)
          full[std::size_t(spec.to_global(i, p.shape))] = double(all[std::size_t(k * p.size + i)]);
      }
    }
    out.emplace_back(g, std::move(full));
  }
  return out;
}

void check_tp_shapes(const models::GptConfig& cfg, int t) {
  if (cfg.channels % cfg.heads != 0)
    input_error("model.gpt.heads", std::to_string(cfg.heads), "must divide model.gpt.channels = " + std::to_string(cfg.channels));
  if (cfg.heads % t != 0)
    input_error("model.gpt.heads", std::to_string(cfg.heads), "must be divisible by tp.degree = " + std::to_string(t));
  if (cfg.channels % t != 0)
    input_error("model.gpt.channels", std::to_string(cfg.channels), "must be divisible by tp.degree = " + std::to_string(t));
  if (cfg.vocab % t != 0)
    input_error("model.gpt.vocab", std::to_string(cfg.vocab), "must be divisible by tp.degree = " + std::to_string(t));
}

template class TpGpt<float>;
template class TpGpt<double>;
template class TpGpt<bf16>;
template class TpGpt<fp16>;
template std::vector<std::pair<models::ParamInfo, std::vector<double>>> gather_full_values(
    const models::ParamStore<bf16>&, TpContext&, const View1<float>&);
template std::vector<std::pair<models::ParamInfo, std::vector<double>>> gather_full_values(
    const models::ParamStore<bf16>&, TpContext&, const View1<bf16>&);
template std::vector<std::pair<models::ParamInfo, std::vector<double>>> gather_full_values(
    const models::ParamStore<fp16>&, TpContext&, const View1<float>&);
template std::vector<std::pair<models::ParamInfo, std::vector<double>>> gather_full_values(
    const models::ParamStore<fp16>&, TpContext&, const View1<fp16>&);
template std::vector<std::pair<models::ParamInfo, std::vector<double>>> gather_full<float>(
    const models::ParamStore<float>&, TpContext&, bool);
template std::vector<std::pair<models::ParamInfo, std::vector<double>>> gather_full<double>(
    const models::ParamStore<double>&, TpContext&, bool);

}  // namespace partrain::parallel
