#include "partrain/models/nmt.hpp"

#include <cmath>

#include "partrain/kernels/cross_entropy.hpp"
#include "partrain/kernels/elementwise.hpp"
#include "partrain/kernels/embedding.hpp"
#include "partrain/kernels/linear.hpp"
#include "partrain/kernels/source_attention.hpp"

namespace partrain::models {
namespace {


/// Every activation of one batch, time-major.
template <class T>
struct NmtActs : LayerState {
  std::int64_t B = 0, S = 0;
  IndexView1 src_tm, dec_tm, tgt_tm;
  View2<T> xs, dxs, dxs_b, e0, y, dy, probs, ctx, dctx, dq, logits, dhf, dhb, scratch_h;
  View1<acc_t<T>> losses;  ///< per-row losses, fp32 for a 16-bit model
  LstmSeq<T> bif, bib;
  std::vector<LstmSeq<T>> enc, dec;
  std::vector<View2<T>> eout, deout, dout, ddout, zin, dzin;
};

template <class T>
View2<T> act(const std::string& name, std::int64_t rows, std::int64_t cols) {
  return View2<T>("act/nmt." + name, rows, cols);
}

/// out[:, 0:p] = a, out[:, p:p+q] = b.
template <class T>
void concat(const View2<T>& a, const View2<T>& b, const View2<T>& out) {
  const std::int64_t p = a.extent(1), q = b.extent(1);
  Kokkos::parallel_for(
      "partrain::nmt::concat", Kokkos::RangePolicy<ExecSpace>(0, out.extent(0)), KOKKOS_LAMBDA(std::int64_t n) {
        for (std::int64_t j = 0; j < p; ++j) out(n, j) = a(n, j);
        for (std::int64_t j = 0; j < q; ++j) out(n, p + j) = b(n, j);
      });
}

/// a += in[:, 0:p] (or = when !add_a), b += in[:, p:p+q].
template <class T>
void split_add(const View2<T>& in, const View2<T>& a, bool add_a, const View2<T>& b, bool add_b) {
  const std::int64_t p = a.extent(1), q = b.extent(1);
  Kokkos::parallel_for(
      "partrain::nmt::split", Kokkos::RangePolicy<ExecSpace>(0, in.extent(0)), KOKKOS_LAMBDA(std::int64_t n) {
        using A = acc_t<T>;
        for (std::int64_t j = 0; j < p; ++j) a(n, j) = T((add_a ? A(a(n, j)) : A(0)) + A(in(n, j)));
        for (std::int64_t j = 0; j < q; ++j) b(n, j) = T((add_b ? A(b(n, j)) : A(0)) + A(in(n, p + j)));
      });
}

/// Sample-major ids [B·S] → time-major [S·B].
inline void time_major(const IndexView1& in, std::int64_t B, std::int64_t S, const IndexView1& out) {
  Kokkos::parallel_for(
      "partrain::nmt::time_major", Kokkos::RangePolicy<ExecSpace>(0, B * S),
      KOKKOS_LAMBDA(std::int64_t n) { out(n) = in((n % B) * S + n / B); });
}

}  // namespace

// ---- LstmSeq -------------------------------------------------------------------------------------------------

template <class T>
void LstmSeq<T>::allocate(const std::string& label, std::int64_t B, std::int64_t S, std::int64_t input,
                          std::int64_t units, bool reverse) {
  B_ = B;
  S_ = S;
  input_ = input;
  units_ = units;
  reverse_ = reverse;
  gates_ = View2<T>("act/" + label + ".gates", S * B, 4 * units);
  c_ = View2<T>("act/" + label + ".c", S * B, units);
  h_ = View2<T>("act/" + label + ".h", S * B, units);
  zeros_ = View2<T>("act/" + label + ".zeros", B, units);
  dgates_ = View2<T>("act/" + label + ".dgates", B, 4 * units);
  dh_carry_ = View2<T>("act/" + label + ".dh", B, units);
  dc_carry_ = View2<T>("act/" + label + ".dc", B, units);
  dh_tmp_ = View2<T>("act/" + label + ".dh_tmp", B, units);
  dc_tmp_ = View2<T>("act/" + label + ".dc_tmp", B, units);
}

namespace {
/// Zeroes rows n of a and b whose sequence has ended before time t (a free function: nvcc's device lambdas cannot
/// live in a class's private member).
template <class T>
void mask_padding(const View2<T>& a, const View2<T>& b, const IndexView1& lengths, std::int64_t t) {
  const std::int64_t U = a.extent(1);
  Kokkos::parallel_for(
      "partrain::nmt::mask", Kokkos::RangePolicy<ExecSpace>(0, a.extent(0)), KOKKOS_LAMBDA(std::int64_t n) {
        if (t < lengths(n))
          return;
        for (std::int64_t j = 0; j < U; ++j) {
          a(n, j) = T(0);
          b(n, j) = T(0);
        }
      });
}
}  // namespace

template <class T>
void LstmSeq<T>::forward(const View2<T>& x, const IndexView1& lengths, std::int64_t t0, std::int64_t t1) {
  for (std::int64_t k = t0; k < t1; ++k) {
    const std::int64_t t = reverse_ ? t1 - 1 - (k - t0) : k;
    const std::int64_t prev = reverse_ ? t + 1 : t - 1;
    const bool first = reverse_ ? t == S_ - 1 : t == 0;
    kernels::lstm_cell_forward(rows(x, t), first ? zeros_ : rows(h_, prev), first ? zeros_ : rows(c_, prev), w_,
                               rows(gates_, t), rows(c_, t), rows(h_, t));
    if (reverse_) mask_padding(rows(h_, t), rows(c_, t), lengths, t);
  }
}

template <class T>
void LstmSeq<T>::begin_backward() {
  Kokkos::deep_copy(dh_carry_, T(0));
  Kokkos::deep_copy(dc_carry_, T(0));
}

template <class T>
void LstmSeq<T>::backward(const View2<T>& x, const View2<T>& dh, const IndexView1& lengths, std::int64_t t0,
                          std::int64_t t1, const View2<T>& dx) {
  for (std::int64_t k = t0; k < t1; ++k) {
    const std::int64_t t = reverse_ ? t0 + (k - t0) : t1 - 1 - (k - t0);  // the reverse of forward's order
    const std::int64_t prev = reverse_ ? t + 1 : t - 1;
    const bool first = reverse_ ? t == S_ - 1 : t == 0;
    kernels::add_into(dh_carry_, rows(dh, t));  // dh_carry = dh(t) + the carry from the step after
    if (reverse_) mask_padding(dh_carry_, dc_carry_, lengths, t);
    const View2<T> dxt = dx.extent(0) > 0 ? rows(dx, t) : View2<T>();
    kernels::lstm_cell_backward(dh_carry_, dc_carry_, rows(x, t), first ? zeros_ : rows(h_, prev),
                                first ? zeros_ : rows(c_, prev), rows(gates_, t), rows(c_, t), w_, dgates_, dxt,
                                dh_tmp_, dc_tmp_, dw_);
    std::swap(dh_carry_, dh_tmp_);
    std::swap(dc_carry_, dc_tmp_);
  }
}

template <class T>
kernels::LstmWeights<T> lstm_weights(const ParamStore<T>& ps, const std::string& p, bool grads) {
  if (grads) return {ps.grad2(p + ".weight_ih"), ps.grad2(p + ".weight_hh"), ps.flat_grad(p + ".bias_ih"), ps.flat_grad(p + ".bias_hh")};
  return {ps.param2(p + ".weight_ih"), ps.param2(p + ".weight_hh"), ps.flat_param(p + ".bias_ih"), ps.flat_param(p + ".bias_hh")};
}

// ---- the model ---------------------------------------------------------------------------------------------

template <class T>
Nmt<T>::Nmt(const NmtConfig& c) : Model<T>("nmt", c.max_len), cfg_(c) {
  using P = typename NmtParams<T>::P;
  const std::int64_t V = c.vocab, E = c.embed, H = c.hidden;
  auto add = [&](const std::string& name, std::vector<P> ps) {
    this->layers_.push_back(std::make_unique<NmtParams<T>>(name, std::move(ps)));
  };
  add("src_embed", {{"src_embed.weight", {V, E}, Init::normal(kNmtEmbedStd)}});
  add("encoder.bi.fwd", nmt_lstm_params<T>("encoder.bi.fwd", E, H / 2));
  add("encoder.bi.bwd", nmt_lstm_params<T>("encoder.bi.bwd", E, H / 2));
  for (std::int64_t i = 1; i < c.enc_layers; ++i)
    add("encoder.layers." + std::to_string(i), nmt_lstm_params<T>("encoder.layers." + std::to_string(i), H, H));
  add("tgt_embed", {{"tgt_embed.weight", {V, E}, Init::normal(kNmtEmbedStd)}});
  for (std::int64_t i = 0; i < c.dec_layers; ++i)
    add("decoder.layers." + std::to_string(i), nmt_lstm_params<T>("decoder.layers." + std::to_string(i), i == 0 ? E : 2 * H, H));
  add("generator", {{"generator.weight", {V, H}, Init::normal(1.0 / std::sqrt(double(H)))},
                    {"generator.bias", {V}, Init::constant(0)}});
}

template <class T>
typename Model<T>::Workspace Nmt<T>::make_workspace(std::int64_t B) const {
  const auto& c = cfg_;
  const std::int64_t S = c.max_len, N = S * B, E = c.embed, H = c.hidden, V = c.vocab;
  auto a = std::make_unique<NmtActs<T>>();
  a->B = B;
  a->S = S;
  a->src_tm = IndexView1("act/nmt.src_tm", N);
  a->dec_tm = IndexView1("act/nmt.dec_tm", N);
  a->tgt_tm = IndexView1("act/nmt.tgt_tm", N);
  a->xs = act<T>("xs", N, E);
  a->dxs = act<T>("dxs", N, E);
  a->dxs_b = act<T>("dxs_b", N, E);
  a->bif.allocate("nmt.encoder.bi.fwd", B, S, E, H / 2, false);
  a->bib.allocate("nmt.encoder.bi.bwd", B, S, E, H / 2, true);
  a->e0 = act<T>("e0", N, H);
  a->dhf = act<T>("dhf", N, H / 2);
  a->dhb = act<T>("dhb", N, H / 2);
  a->enc.resize(std::size_t(c.enc_layers));
  a->eout.resize(std::size_t(c.enc_layers));
  a->deout.resize(std::size_t(c.enc_layers));
  a->eout[0] = a->e0;
  a->deout[0] = act<T>("de0", N, H);
  for (std::int64_t i = 1; i < c.enc_layers; ++i) {
    a->enc[std::size_t(i)].allocate("nmt.encoder.layers." + std::to_string(i), B, S, H, H, false);
    a->eout[std::size_t(i)] = i >= 2 ? act<T>("enc" + std::to_string(i), N, H) : a->enc[std::size_t(i)].h();
    a->deout[std::size_t(i)] = act<T>("denc" + std::to_string(i), N, H);
  }
  a->scratch_h = act<T>("scratch_h", N, H);
  a->y = act<T>("y", N, E);
  a->dy = act<T>("dy", N, E);
  a->dec.resize(std::size_t(c.dec_layers));
  a->dout.resize(std::size_t(c.dec_layers));
  a->ddout.resize(std::size_t(c.dec_layers));
  a->zin.resize(std::size_t(c.dec_layers));
  a->dzin.resize(std::size_t(c.dec_layers));
  for (std::int64_t i = 0; i < c.dec_layers; ++i) {
    const auto k = std::size_t(i);
    a->dec[k].allocate("nmt.decoder.layers." + std::to_string(i), B, S, i == 0 ? E : 2 * H, H, false);
    a->dout[k] = i >= 2 ? act<T>("dec" + std::to_string(i), N, H) : a->dec[k].h();
    a->ddout[k] = act<T>("ddec" + std::to_string(i), N, H);
    if (i >= 1) {
      a->zin[k] = act<T>("zin" + std::to_string(i), N, 2 * H);
      a->dzin[k] = act<T>("dzin" + std::to_string(i), N, 2 * H);
    }
  }
  a->probs = act<T>("probs", N, S);
  a->ctx = act<T>("ctx", N, H);
  a->dctx = act<T>("dctx", N, H);
  a->dq = act<T>("dq", N, H);
  a->logits = act<T>("logits", N, V);
  a->losses = View1<acc_t<T>>("act/nmt.losses", N);
  typename Model<T>::Workspace ws;
  ws.rows = N;
  ws.states.push_back(std::move(a));
  return ws;
}

template <class T>
double Nmt<T>::run(const Batch<T>& batch, typename Model<T>::Workspace& ws, double loss_scale,
                   const typename Model<T>::Hooks& hooks, bool backward) {
  auto& a = static_cast<NmtActs<T>&>(*ws.states.at(0));
  PARTRAIN_REQUIRE(a.B == batch.samples, "NMT workspace of another batch size");
  const auto& c = cfg_;
  const auto& ps = this->params();
  const std::int64_t B = a.B, S = a.S, Le = c.enc_layers, Ld = c.dec_layers;
  const IndexView1 len = batch.lengths;
  auto bind = [&](LstmSeq<T>& l, const std::string& p) { l.bind(lstm_weights(ps, p, false), lstm_weights(ps, p, true)); };
  bind(a.bif, "encoder.bi.fwd");
  bind(a.bib, "encoder.bi.bwd");
  for (std::int64_t i = 1; i < Le; ++i) bind(a.enc[std::size_t(i)], "encoder.layers." + std::to_string(i));
  for (std::int64_t i = 0; i < Ld; ++i) bind(a.dec[std::size_t(i)], "decoder.layers." + std::to_string(i));

  // ---- forward (before_forward(i) just before layer i's parameters are first read: a parameter server's worker
  // waits there for that layer's pieces of the pull)
  auto before = [&](std::size_t layer) {
    if (hooks.before_forward) hooks.before_forward(layer);
  };
  time_major(batch.tokens, B, S, a.src_tm);
  time_major(batch.dec_tokens, B, S, a.dec_tm);
  time_major(batch.targets, B, S, a.tgt_tm);
  before(src_embed_layer());
  kernels::embedding_forward(a.src_tm, ps.param2("src_embed.weight"), a.xs);
  before(bi_layer(0));
  a.bif.forward(a.xs, len, 0, S);
  before(bi_layer(1));
  a.bib.forward(a.xs, len, 0, S);
  concat(a.bif.h(), a.bib.h(), a.e0);
  for (std::int64_t i = 1; i < Le; ++i) {
    const auto k = std::size_t(i);
    before(enc_layer(i));
    a.enc[k].forward(a.eout[k - 1], len, 0, S);
    if (i >= 2) {
      Kokkos::deep_copy(a.eout[k], a.enc[k].h());
      kernels::add_into(a.eout[k], a.eout[k - 1]);
    }
  }
  before(tgt_embed_layer());
  kernels::embedding_forward(a.dec_tm, ps.param2("tgt_embed.weight"), a.y);
  before(dec_layer(0));
  a.dec[0].forward(a.y, len, 0, S);
  const View2<T> top_enc = a.eout[std::size_t(Le - 1)];
  kernels::source_attention_forward(a.dout[0], top_enc, len, B, a.probs, a.ctx);
  for (std::int64_t i = 1; i < Ld; ++i) {
    const auto k = std::size_t(i);
    concat(a.dout[k - 1], a.ctx, a.zin[k]);
    before(dec_layer(i));
    a.dec[k].forward(a.zin[k], len, 0, S);
    if (i >= 2) {
      Kokkos::deep_copy(a.dout[k], a.dec[k].h());
      kernels::add_into(a.dout[k], a.dout[k - 1]);
    }
  }
  const View2<T> top = a.dout[std::size_t(Ld - 1)];
  before(generator_layer());
  kernels::linear_forward(top, ps.param2("generator.weight"), ps.flat_param("generator.bias"), a.logits);
  if (hooks.forward_done) hooks.forward_done();
  if (!backward) {
    kernels::cross_entropy_forward(a.logits, a.tgt_tm, a.losses);
    return kernels::cross_entropy_sum(a.losses);
  }
  kernels::cross_entropy_forward_backward(a.logits, a.tgt_tm, acc_t<T>(loss_scale), a.losses, a.logits);
  const double loss = kernels::cross_entropy_sum(a.losses);

  // ---- backward (declared layers finish in decreasing index order)
  auto done = [&](std::size_t layer) {
    if (hooks.backward_done) hooks.backward_done(layer);
  };
  auto& top_grad = a.ddout[std::size_t(Ld - 1)];
  kernels::linear_backward(a.logits, top, ps.param2("generator.weight"), top_grad, ps.grad2("generator.weight"),
                           ps.flat_grad("generator.bias"));
  done(generator_layer());
  for (std::int64_t i = 0; i + 1 < Ld; ++i) Kokkos::deep_copy(a.ddout[std::size_t(i)], T(0));
  Kokkos::deep_copy(a.dctx, T(0));
  for (std::int64_t i = Ld - 1; i >= 1; --i) {
    const auto k = std::size_t(i);
    a.dec[k].begin_backward();
    a.dec[k].backward(a.zin[k], a.ddout[k], len, 0, S, a.dzin[k]);
    split_add(a.dzin[k], a.ddout[k - 1], true, a.dctx, true);
    if (i >= 2) kernels::add_into(a.ddout[k - 1], a.ddout[k]);  // the residual
    done(dec_layer(i));
  }
  for (std::int64_t i = 0; i < Le; ++i) Kokkos::deep_copy(a.deout[std::size_t(i)], T(0));
  kernels::source_attention_backward(a.dctx, a.dout[0], top_enc, len, B, a.probs, a.dq, a.deout[std::size_t(Le - 1)]);
  kernels::add_into(a.ddout[0], a.dq);
  a.dec[0].begin_backward();
  a.dec[0].backward(a.y, a.ddout[0], len, 0, S, a.dy);
  done(dec_layer(0));
  kernels::embedding_backward(a.dec_tm, a.dy, ps.grad2("tgt_embed.weight"));
  done(tgt_embed_layer());
  for (std::int64_t i = Le - 1; i >= 1; --i) {
    const auto k = std::size_t(i);
    a.enc[k].begin_backward();
    a.enc[k].backward(a.eout[k - 1], a.deout[k], len, 0, S, a.scratch_h);
    kernels::add_into(a.deout[k - 1], a.scratch_h);
    if (i >= 2) kernels::add_into(a.deout[k - 1], a.deout[k]);
    done(enc_layer(i));
  }
  split_add(a.deout[0], a.dhf, false, a.dhb, false);
  a.bib.begin_backward();
  a.bib.backward(a.xs, a.dhb, len, 0, S, a.dxs_b);
  done(bi_layer(1));
  a.bif.begin_backward();
  a.bif.backward(a.xs, a.dhf, len, 0, S, a.dxs);
  kernels::add_into(a.dxs, a.dxs_b);
  done(bi_layer(0));
  kernels::embedding_backward(a.src_tm, a.dxs, ps.grad2("src_embed.weight"));
  done(src_embed_layer());
  return loss;
}

template <class T>
double Nmt<T>::forward_backward(const Batch<T>& batch, typename Model<T>::Workspace& ws, double loss_scale,
                                const typename Model<T>::Hooks& hooks) {
  return run(batch, ws, loss_scale, hooks, true);
}

template <class T>
double Nmt<T>::loss_sum(const Batch<T>& batch, typename Model<T>::Workspace& ws) {
  return run(batch, ws, 0.0, {}, false);
}

template <class T>
double Nmt<T>::forward_flops(std::int64_t samples) const {
  const auto& c = cfg_;
  const double B = double(samples), S = double(c.max_len), E = double(c.embed), H = double(c.hidden),
               V = double(c.vocab);
  auto lstm = [&](double in, double units) { return 2.0 * B * S * 4.0 * units * (in + units); };
  double f = 2 * lstm(E, H / 2) + lstm(E, H) + 2.0 * B * S * H * V;  // bi layer, decoder 0, generator
  f += double(c.enc_layers - 1) * lstm(H, H) + double(c.dec_layers - 1) * lstm(2 * H, H);
  f += 4.0 * B * S * S * H;  // attention scores and context
  return f;
}

template class LstmSeq<float>;
template class LstmSeq<double>;
template class LstmSeq<bf16>;
template class LstmSeq<fp16>;
template class Nmt<float>;
template class Nmt<double>;
template class Nmt<bf16>;
template class Nmt<fp16>;
template kernels::LstmWeights<float> lstm_weights<float>(const ParamStore<float>&, const std::string&, bool);
template kernels::LstmWeights<double> lstm_weights<double>(const ParamStore<double>&, const std::string&, bool);
template kernels::LstmWeights<bf16> lstm_weights<bf16>(const ParamStore<bf16>&, const std::string&, bool);
template kernels::LstmWeights<fp16> lstm_weights<fp16>(const ParamStore<fp16>&, const std::string&, bool);

}  // namespace partrain::models
