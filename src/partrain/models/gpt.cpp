#include "partrain/models/gpt.hpp"

#include <cmath>

#include "partrain/core/error.hpp"
#include "partrain/kernels/activation.hpp"
#include "partrain/kernels/elementwise.hpp"
#include "partrain/kernels/embedding.hpp"
#include "partrain/kernels/layernorm.hpp"
#include "partrain/kernels/linear.hpp"
#include "partrain/models/gpt_layers.hpp"

namespace partrain::models {
namespace {

constexpr double kInitStd = 0.02;

template <class T>
struct BlockState : LayerState {
  View2<T> ln1, qkv, atty, res1, ln2, fc, fcg;
  View1<acc_t<T>> mean1, rstd1, mean2, rstd2;
  kernels::AttentionState<T> attn;
  std::unique_ptr<MoeState<T>> moe;  ///< an MoE block's routing and experts' activations (fc, fcg unused)
  // Split backward only: the output gradients of the four linears, from backward_input to backward_weight.
  View2<T> dy_proj, d_fc, d_res1, d_qkv;
};

template <class T>
struct HeadState : LayerState {
  View2<T> ln;
  View1<acc_t<T>> mean, rstd;
  View2<T> dlogits;  ///< split backward only: the logits' gradient, kept for backward_weight
};

template <class T>
struct EmbeddingState : LayerState {
  View2<T> dy;  ///< split backward only: the output gradient, kept for backward_weight (the embedding's backward is all weight gradient)
};

/// `slot`, (re)allocated to [rows, cols] when its shape differs.
template <class T>
const View2<T>& sized(View2<T>& slot, const std::string& label, std::int64_t rows, std::int64_t cols) {
  if (std::int64_t(slot.extent(0)) != rows || std::int64_t(slot.extent(1)) != cols) slot = View2<T>(label, rows, cols);
  return slot;
}

}  // namespace

// ---- embedding ----------------------------------------------------------------------------------------------

template <class T>
void GptEmbedding<T>::declare(ParamStore<T>& ps) {
  ps.declare("wte", {cfg_.vocab, cfg_.channels}, Init::normal(kInitStd));
  ps.declare("wpe", {cfg_.seq_len, cfg_.channels}, Init::normal(kInitStd));
}

template <class T>
void GptEmbedding<T>::bind(const ParamStore<T>& ps) {
  wte_ = ps.param2("wte");
  wpe_ = ps.param2("wpe");
  dwte_ = ps.grad2("wte");
  dwpe_ = ps.grad2("wpe");
}

template <class T>
void GptEmbedding<T>::forward(const Batch<T>& batch, const View2<T>&, const View2<T>& y, LayerState&) {
  kernels::embedding_forward(batch.tokens, wte_, y);
  kernels::position_add(y, wpe_);
}

template <class T>
void GptEmbedding<T>::backward(const Batch<T>& batch, const View2<T>&, const View2<T>& dy, const View2<T>&,
                               LayerState&) {
  kernels::embedding_backward(batch.tokens, dy, dwte_);
  kernels::position_backward(dy, dwpe_);
}

template <class T>
std::unique_ptr<LayerState> GptEmbedding<T>::make_state(std::int64_t) const {
  return std::make_unique<EmbeddingState<T>>();
}

template <class T>
void GptEmbedding<T>::backward_input(const Batch<T>&, const View2<T>&, const View2<T>& dy, const View2<T>&,
                                     LayerState& s) {
  auto& st = static_cast<EmbeddingState<T>&>(s);
  Kokkos::deep_copy(sized(st.dy, "act/embedding.dy", dy.extent(0), dy.extent(1)), dy);
}

template <class T>
void GptEmbedding<T>::backward_weight(const Batch<T>& batch, const View2<T>&, LayerState& s) {
  auto& st = static_cast<EmbeddingState<T>&>(s);
  kernels::embedding_backward(batch.tokens, st.dy, dwte_);
  kernels::position_backward(st.dy, dwpe_);
}

// ---- transformer block --------------------------------------------------------------------------------------

template <class T>
GptBlock<T>::GptBlock(const GptConfig& c, int index) : cfg_(c), index_(index) {
  if (cfg_.moe.is_moe_block(index_))
    moe_ = std::make_unique<MoeFeedForward<T>>(cfg_.moe, cfg_.channels, cfg_.seq_len, name() + ".moe",
                                               kInitStd / std::sqrt(2.0 * double(cfg_.layers)), cfg_.expert_first,
                                               cfg_.expert_count);
}

template <class T>
void GptBlock<T>::declare(ParamStore<T>& ps) {
  const auto C = cfg_.channels;
  const auto n = name();
  const double proj_std = kInitStd / std::sqrt(2.0 * double(cfg_.layers));
  ps.declare(n + ".ln1.weight", {C}, Init::constant(1.0));
  ps.declare(n + ".ln1.bias", {C}, Init::constant(0.0));
  ps.declare(n + ".attn.qkv.weight", {3 * C, C}, Init::normal(kInitStd));
  ps.declare(n + ".attn.qkv.bias", {3 * C}, Init::constant(0.0));
  ps.declare(n + ".attn.proj.weight", {C, C}, Init::normal(proj_std));
  ps.declare(n + ".attn.proj.bias", {C}, Init::constant(0.0));
  ps.declare(n + ".ln2.weight", {C}, Init::constant(1.0));
  ps.declare(n + ".ln2.bias", {C}, Init::constant(0.0));
  if (moe_) {
    moe_->declare(ps);
    return;
  }
  ps.declare(n + ".mlp.fc.weight", {4 * C, C}, Init::normal(kInitStd));
  ps.declare(n + ".mlp.fc.bias", {4 * C}, Init::constant(0.0));
  ps.declare(n + ".mlp.proj.weight", {C, 4 * C}, Init::normal(proj_std));
  ps.declare(n + ".mlp.proj.bias", {C}, Init::constant(0.0));
}

template <class T>
typename GptBlock<T>::Params GptBlock<T>::bind_views(const ParamStore<T>& ps, bool grads) const {
  const auto n = name();
  auto v1 = [&](const std::string& s) { return grads ? ps.flat_grad(n + s) : ps.flat_param(n + s); };
  auto v2 = [&](const std::string& s) { return grads ? ps.grad2(n + s) : ps.param2(n + s); };
  Params p;
  p.ln1_w = v1(".ln1.weight");
  p.ln1_b = v1(".ln1.bias");
  p.qkv_w = v2(".attn.qkv.weight");
  p.qkv_b = v1(".attn.qkv.bias");
  p.attn_proj_w = v2(".attn.proj.weight");
  p.attn_proj_b = v1(".attn.proj.bias");
  p.ln2_w = v1(".ln2.weight");
  p.ln2_b = v1(".ln2.bias");
  if (moe_) return p;
  p.fc_w = v2(".mlp.fc.weight");
  p.fc_b = v1(".mlp.fc.bias");
  p.mlp_proj_w = v2(".mlp.proj.weight");
  p.mlp_proj_b = v1(".mlp.proj.bias");
  return p;
}

template <class T>
void GptBlock<T>::bind(const ParamStore<T>& ps) {
  p_ = bind_views(ps, false);
  g_ = bind_views(ps, true);
  if (moe_) moe_->bind(ps);
}

template <class T>
std::unique_ptr<LayerState> GptBlock<T>::make_state(std::int64_t rows) const {
  const auto C = cfg_.channels;
  const std::string a = "act/" + name();
  auto st = std::make_unique<BlockState<T>>();
  st->ln1 = View2<T>(a + ".ln1", rows, C);
  st->qkv = View2<T>(a + ".qkv", rows, 3 * C);
  st->atty = View2<T>(a + ".atty", rows, C);
  st->res1 = View2<T>(a + ".res1", rows, C);
  st->ln2 = View2<T>(a + ".ln2", rows, C);
  if (moe_) st->moe = moe_->make_state(rows);
  else {
    st->fc = View2<T>(a + ".fc", rows, 4 * C);
    st->fcg = View2<T>(a + ".fcg", rows, 4 * C);
  }
  st->mean1 = View1<acc_t<T>>(a + ".mean1", rows);
  st->rstd1 = View1<acc_t<T>>(a + ".rstd1", rows);
  st->mean2 = View1<acc_t<T>>(a + ".mean2", rows);
  st->rstd2 = View1<acc_t<T>>(a + ".rstd2", rows);
  st->attn = kernels::AttentionState<T>(a + ".attn", rows / cfg_.seq_len, cfg_.seq_len, cfg_.heads,
                                        C / cfg_.heads);
  return st;
}

template <class T>
void GptBlock<T>::ensure_scratch(std::int64_t rows) {
  const auto C = cfg_.channels;
  if (std::int64_t(d_wide_.extent(0)) == rows) return;
  d_wide_ = View2<T>("act/" + name() + ".scratch.wide", rows, 4 * C);
  d_narrow_ = View2<T>("act/" + name() + ".scratch.narrow", rows, C);
  d_qkv_ = View2<T>("act/" + name() + ".scratch.qkv", rows, 3 * C);
}

template <class T>
void GptBlock<T>::forward(const Batch<T>&, const View2<T>& x, const View2<T>& y, LayerState& s) {
  auto& st = static_cast<BlockState<T>&>(s);
  const std::int64_t Tn = cfg_.seq_len, B = x.extent(0) / Tn;
  kernels::layernorm_forward(x, p_.ln1_w, p_.ln1_b, st.ln1, st.mean1, st.rstd1);
  kernels::linear_forward(st.ln1, p_.qkv_w, p_.qkv_b, st.qkv);
  kernels::attention_forward(kernels::as_sequences(st.qkv, B, Tn), kernels::as_sequences(st.atty, B, Tn), cfg_.heads, st.attn);
  kernels::linear_forward(st.atty, p_.attn_proj_w, p_.attn_proj_b, st.res1);
  kernels::add_into(st.res1, x);
  kernels::layernorm_forward(st.res1, p_.ln2_w, p_.ln2_b, st.ln2, st.mean2, st.rstd2);
  if (moe_) {
    moe_->forward(st.ln2, y, *st.moe);
  } else {
    kernels::linear_forward(st.ln2, p_.fc_w, p_.fc_b, st.fc);
    kernels::gelu_forward(kernels::flat(st.fc), kernels::flat(st.fcg));
    kernels::linear_forward(st.fcg, p_.mlp_proj_w, p_.mlp_proj_b, y);
  }
  kernels::add_into(y, st.res1);
}

template <class T>
const MoeState<T>* GptBlock<T>::moe_state(const LayerState& s) const {
  return moe_ ? static_cast<const BlockState<T>&>(s).moe.get() : nullptr;
}

template <class T>
double GptBlock<T>::aux_loss(const LayerState& s) const {
  return moe_ ? static_cast<const BlockState<T>&>(s).moe->aux_sum : 0.0;
}

template <class T>
void GptBlock<T>::backward(const Batch<T>&, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                           LayerState& s) {
  auto& st = static_cast<BlockState<T>&>(s);
  const std::int64_t Tn = cfg_.seq_len, B = x.extent(0) / Tn;
  ensure_scratch(x.extent(0));
  // MLP branch; dy then becomes the gradient of res1 (skip path + LN2 path).
  if (moe_) {
    moe_->backward(st.ln2, dy, d_narrow_, *st.moe, st.loss_grad_scale);
  } else {
    kernels::linear_backward(dy, st.fcg, p_.mlp_proj_w, d_wide_, g_.mlp_proj_w, g_.mlp_proj_b);
    kernels::gelu_backward(kernels::flat(st.fc), kernels::flat(d_wide_), kernels::flat(d_wide_));
    kernels::linear_backward(d_wide_, st.ln2, p_.fc_w, d_narrow_, g_.fc_w, g_.fc_b);
  }
  kernels::layernorm_backward(d_narrow_, st.res1, p_.ln2_w, st.mean2, st.rstd2, dy, g_.ln2_w, g_.ln2_b);
  // Attention branch.
  kernels::linear_backward(dy, st.atty, p_.attn_proj_w, d_narrow_, g_.attn_proj_w, g_.attn_proj_b);
  kernels::attention_backward(kernels::as_sequences(d_narrow_, B, Tn), kernels::as_sequences(d_qkv_, B, Tn), cfg_.heads, st.attn);
  kernels::linear_backward(d_qkv_, st.ln1, p_.qkv_w, d_narrow_, g_.qkv_w, g_.qkv_b);
  Kokkos::deep_copy(dx, dy);
  kernels::layernorm_backward(d_narrow_, x, p_.ln1_w, st.mean1, st.rstd1, dx, g_.ln1_w, g_.ln1_b);
}

template <class T>
void GptBlock<T>::backward_input(const Batch<T>&, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                                 LayerState& s) {
  // backward() with every weight gradient of a linear left for backward_weight; the LayerNorm parameters' gradients
  // (cheap, fused with their input gradient) are taken here. The output gradient of each linear is kept in `st`.
  PARTRAIN_REQUIRE(!moe_, "an MoE block does not split its backward");
  auto& st = static_cast<BlockState<T>&>(s);
  const std::int64_t Tn = cfg_.seq_len, N = x.extent(0), B = N / Tn, C = cfg_.channels;
  ensure_scratch(N);
  const std::string a = "act/" + name();
  Kokkos::deep_copy(sized(st.dy_proj, a + ".dy_proj", N, C), dy);
  auto& d_fc = sized(st.d_fc, a + ".d_fc", N, 4 * C);
  kernels::linear_backward_input(dy, p_.mlp_proj_w, d_fc);
  kernels::gelu_backward(kernels::flat(st.fc), kernels::flat(d_fc), kernels::flat(d_fc));
  kernels::linear_backward_input(d_fc, p_.fc_w, d_narrow_);
  kernels::layernorm_backward(d_narrow_, st.res1, p_.ln2_w, st.mean2, st.rstd2, dy, g_.ln2_w, g_.ln2_b);
  Kokkos::deep_copy(sized(st.d_res1, a + ".d_res1", N, C), dy);
  kernels::linear_backward_input(dy, p_.attn_proj_w, d_narrow_);
  auto& d_qkv = sized(st.d_qkv, a + ".d_qkv", N, 3 * C);
  kernels::attention_backward(kernels::as_sequences(d_narrow_, B, Tn), kernels::as_sequences(d_qkv, B, Tn), cfg_.heads, st.attn);
  kernels::linear_backward_input(d_qkv, p_.qkv_w, d_narrow_);
  Kokkos::deep_copy(dx, dy);
  kernels::layernorm_backward(d_narrow_, x, p_.ln1_w, st.mean1, st.rstd1, dx, g_.ln1_w, g_.ln1_b);
}

template <class T>
void GptBlock<T>::backward_weight(const Batch<T>&, const View2<T>&, LayerState& s) {
  auto& st = static_cast<BlockState<T>&>(s);
  kernels::linear_backward_weight(st.dy_proj, st.fcg, g_.mlp_proj_w, g_.mlp_proj_b);
  kernels::linear_backward_weight(st.d_fc, st.ln2, g_.fc_w, g_.fc_b);
  kernels::linear_backward_weight(st.d_res1, st.atty, g_.attn_proj_w, g_.attn_proj_b);
  kernels::linear_backward_weight(st.d_qkv, st.ln1, g_.qkv_w, g_.qkv_b);
}

template <class T>
double GptBlock<T>::activation_elements(std::int64_t rows) const {
  // output C; saved ln1, qkv 3C, atty, res1, ln2, fc 4C, fcg 4C; 2 means and 2 rstds; attention's q, k, v, y (4C),
  // probabilities H·T per row and its T×T and T×d scratch; the backward's scratch 4C + C + 3C
  const double N = double(rows), C = double(cfg_.channels), T_ = double(cfg_.seq_len), H = double(cfg_.heads);
  const double dense = N * (C + 15 * C + 4 + 4 * C + H * T_ + 8 * C) + T_ * T_ + T_ * (C / H);
  return moe_ ? dense - N * 8 * C + moe_->activation_elements(rows) : dense;  // the experts' fc, fcg: the MoE's own
}

template <class T>
double GptBlock<T>::forward_flops(std::int64_t rows) const {
  const double N = double(rows), C = double(cfg_.channels);
  if (moe_) return 8.0 * N * C * C + 4.0 * N * double(cfg_.seq_len) * C + moe_->forward_flops(rows);
  return 24.0 * N * C * C + 4.0 * N * double(cfg_.seq_len) * C;
}

// ---- head ---------------------------------------------------------------------------------------------------

template <class T>
void GptHead<T>::declare(ParamStore<T>& ps) {
  ps.declare("ln_f.weight", {cfg_.channels}, Init::constant(1.0));
  ps.declare("ln_f.bias", {cfg_.channels}, Init::constant(0.0));
}

template <class T>
void GptHead<T>::bind(const ParamStore<T>& ps) {
  wte_ = ps.param2("wte");
  dwte_ = ps.grad2("wte");
  w_ = ps.flat_param("ln_f.weight");
  b_ = ps.flat_param("ln_f.bias");
  dw_ = ps.flat_grad("ln_f.weight");
  db_ = ps.flat_grad("ln_f.bias");
}

template <class T>
std::unique_ptr<LayerState> GptHead<T>::make_state(std::int64_t rows) const {
  auto st = std::make_unique<HeadState<T>>();
  st->ln = View2<T>("act/head.ln", rows, cfg_.channels);
  st->mean = View1<acc_t<T>>("act/head.mean", rows);
  st->rstd = View1<acc_t<T>>("act/head.rstd", rows);
  return st;
}

template <class T>
void GptHead<T>::forward(const Batch<T>&, const View2<T>& x, const View2<T>& y, LayerState& s) {
  auto& st = static_cast<HeadState<T>&>(s);
  kernels::layernorm_forward(x, w_, b_, st.ln, st.mean, st.rstd);
  kernels::linear_forward(st.ln, wte_, View1<T>(), y);
}

template <class T>
void GptHead<T>::backward(const Batch<T>&, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                          LayerState& s) {
  auto& st = static_cast<HeadState<T>&>(s);
  if (std::int64_t(d_ln_.extent(0)) != std::int64_t(x.extent(0)))
    d_ln_ = View2<T>("act/head.scratch", x.extent(0), cfg_.channels);
  kernels::linear_backward(dy, st.ln, wte_, d_ln_, dwte_, View1<T>());
  Kokkos::deep_copy(dx, T(0));
  kernels::layernorm_backward(d_ln_, x, w_, st.mean, st.rstd, dx, dw_, db_);
}

template <class T>
void GptHead<T>::backward_input(const Batch<T>&, const View2<T>& x, const View2<T>& dy, const View2<T>& dx,
                                LayerState& s) {
  auto& st = static_cast<HeadState<T>&>(s);
  if (std::int64_t(d_ln_.extent(0)) != std::int64_t(x.extent(0)))
    d_ln_ = View2<T>("act/head.scratch", x.extent(0), cfg_.channels);
  Kokkos::deep_copy(sized(st.dlogits, "act/head.dlogits", dy.extent(0), dy.extent(1)), dy);
  kernels::linear_backward_input(dy, wte_, d_ln_);
  Kokkos::deep_copy(dx, T(0));
  kernels::layernorm_backward(d_ln_, x, w_, st.mean, st.rstd, dx, dw_, db_);
}

template <class T>
void GptHead<T>::backward_weight(const Batch<T>&, const View2<T>&, LayerState& s) {
  auto& st = static_cast<HeadState<T>&>(s);
  kernels::linear_backward_weight(st.dlogits, st.ln, dwte_, View1<T>());
}

// ---- model --------------------------------------------------------------------------------------------------

template <class T>
Gpt<T>::Gpt(const GptConfig& cfg) : Model<T>("gpt", cfg.seq_len), cfg_(cfg) {
  this->layers_.push_back(std::make_unique<GptEmbedding<T>>(cfg));
  for (int l = 0; l < cfg.layers; ++l) this->layers_.push_back(std::make_unique<GptBlock<T>>(cfg, l));
  this->layers_.push_back(std::make_unique<GptHead<T>>(cfg));
}

template class GptEmbedding<float>;
template class GptEmbedding<double>;
template class GptBlock<float>;
template class GptBlock<double>;
template class GptHead<float>;
template class GptHead<double>;
template class Gpt<float>;
template class Gpt<double>;
template class GptEmbedding<bf16>;
template class GptEmbedding<fp16>;
template class GptBlock<bf16>;
template class GptBlock<fp16>;
template class GptHead<bf16>;
template class GptHead<fp16>;
template class Gpt<bf16>;
template class Gpt<fp16>;

}  // namespace partrain::models
