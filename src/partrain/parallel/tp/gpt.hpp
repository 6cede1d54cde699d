// The reference GPT with tensor parallelism of degree t (Megatron-LM): attention heads split over the ranks
// (fused qkv column-parallel, output projection row-parallel), MLP fc column-parallel and proj row-parallel,
// a vocabulary-parallel embedding (wte split by rows; lookups outside a rank's rows give zeros, then summed),
// the tied LM head producing vocabulary-sharded logits, and a parallel cross-entropy that never gathers them:
//   m = max over ranks of the local row maxima;  S = Σ over ranks Σ_j exp(z_j − m);  z_y from the owner of y;
//   loss = log S + m − z_y;  dz_j = scale·(exp(z_j − m)/S − [j = y]) on the rank owning column j.
// LayerNorms are replicated. With sequence parallelism, the activations outside the tensor-parallel regions
// (embedding output, LayerNorms, residual stream) are sharded by rows (contiguous blocks of the B·T rows) and
// the allreduces become reduce-scatter + allgather pairs; the replicated parameters then see only their rows, so
// finalize_grads() sums their gradients over the group.
// Parameter names are the reference's; shapes are the shards' (ShardSpec says where each sits).
// With context parallelism (TpContext::cp, docs/cp.md) a sample is still a whole sequence, but every layer runs on
// this rank's Tl = T/cp tokens of it (the embedding picks them, attention sees the rest through the group, the loss
// scores their targets); the replicated parameters' gradients are then partial sums, completed by the trainer's
// reduction over the data-parallel group with context parallelism.
#pragma once

#include "partrain/models/gpt.hpp"
#include "partrain/collectives/wait.hpp"
#include "partrain/parallel/tp/mappings.hpp"
#include "partrain/parallel/tp/vocab_parallel.hpp"

namespace partrain::parallel {

/// InputError when heads, channels or vocabulary do not divide by t (or heads do not divide channels).
void check_tp_shapes(const models::GptConfig& cfg, int t);

template <class T>
class TpGpt : public models::Model<T> {
 public:
  /// InputError when heads, channels or vocabulary do not divide by t.
  TpGpt(const models::GptConfig& cfg, TpContext& tp);
  double loss(const View2<T>& logits, const IndexView1& targets, const View1<acc_t<T>>& losses) override;
  double loss_and_grad(const View2<T>& logits, const IndexView1& targets, acc_t<T> scale, const View1<acc_t<T>>& losses,
                       const View2<T>& dlogits) override;
  void finalize_grads_in(models::ParamStore<T>& ps) override;
  void finalize_grads_wide(const models::ParamStore<T>& ps, const View1<acc_t<T>>& grads) override;
  std::vector<std::string> tied_parameters() const override { return {"wte"}; }
  std::pair<std::size_t, std::size_t> body_layers() const override { return {1, std::size_t(cfg_.layers) + 1}; }
  TpContext& tp() { return tp_; }
  const models::GptConfig& config() const { return cfg_; }

 private:
  double parallel_cross_entropy(const View2<T>& logits, const IndexView1& targets, acc_t<T> scale, const View1<acc_t<T>>& losses,
                                const View2<T>* dlogits);
  models::GptConfig cfg_;
  TpContext& tp_;
  VocabParallelLoss<T> ce_;
  IndexView1 targets_;  ///< context parallelism: the targets of this rank's tokens
};

/// Every parameter (or gradient) as the whole tensor, gathered over the tensor-parallel group: name → values in
/// the reference layout. Collective over the group.
template <class T>
std::vector<std::pair<models::ParamInfo, std::vector<double>>> gather_full(const models::ParamStore<T>& ps,
                                                                           TpContext& tp, bool grads);
/// The same for `values` laid out like the store (a 16-bit model's fp32 master weights, its gradients).
template <class T, class V>
std::vector<std::pair<models::ParamInfo, std::vector<double>>> gather_full_values(const models::ParamStore<T>& ps,
                                                                                  TpContext& tp, const V& values);

extern template class TpGpt<float>;
extern template class TpGpt<double>;
extern template class TpGpt<bf16>;
extern template class TpGpt<fp16>;

}  // namespace partrain::parallel
