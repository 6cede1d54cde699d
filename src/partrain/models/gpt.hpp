// The reference GPT (GPT-2 block exactly; DESIGN.md, Reference models):
//   x = wte[tokens] + wpe[positions]
//   L × { x += proj(attn(LN1(x)));  x += mlp(LN2(x)) },  mlp = Linear C→4C, GELU(tanh), Linear 4C→C
//   logits = LN_f(x)·wteᵀ (tied head);  loss = mean cross-entropy over B·T tokens
// Init: weights N(0, 0.02); attn.proj and mlp.proj weights N(0, 0.02/√(2L)); biases 0; LN gain 1, bias 0.
// Layers: "embedding" (wte, wpe) | "blocks.<l>" × L | "head" (ln_f, uses wte).
// Mixture of experts (model.gpt.moe.every > 0): in every moe.every-th block the MLP is E expert MLPs behind a router
// (models/moe.hpp), and the loss adds their load-balancing loss.
#pragma once

#include "partrain/models/model.hpp"
#include "partrain/models/moe.hpp"

namespace partrain::models {

struct GptConfig {
  std::int64_t vocab = 512;    ///< V
  std::int64_t seq_len = 128;  ///< T (also the number of learned positions)
  std::int64_t layers = 4;     ///< L
  std::int64_t channels = 256; ///< C
  std::int64_t heads = 4;      ///< H, divides C
  MoeConfig moe{};             ///< mixture of experts in every moe.every-th block (models/moe.hpp)
  /// The experts this model holds in each MoE block: [expert_first, expert_first + expert_count) (−1: all of them;
  /// expert parallelism builds each rank's model with its own).
  std::int64_t expert_first = 0, expert_count = -1;
};

template <class T>
class Gpt : public Model<T> {
 public:
  explicit Gpt(const GptConfig& cfg);
  const GptConfig& config() const { return cfg_; }
  std::vector<std::string> tied_parameters() const override { return {"wte"}; }
  std::pair<std::size_t, std::size_t> body_layers() const override { return {1, std::size_t(cfg_.layers) + 1}; }

 private:
  GptConfig cfg_;
};

extern template class Gpt<float>;
extern template class Gpt<double>;
extern template class Gpt<bf16>;
extern template class Gpt<fp16>;

}  // namespace partrain::models
