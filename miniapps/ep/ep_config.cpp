#include "ep_config.hpp"

#include "partrain/core/error.hpp"

namespace partrain::ep_app {

void declare_keys(Deck& d, int default_degree) {
  dp_app::declare_keys(d);
  d.declare_int("ep.degree", default_degree, "expert-parallel degree: ranks sharing each MoE block's experts", 1, 1 << 16);
  d.declare_string("ep.algorithm", "auto", "the token all-to-alls' algorithm (auto: pairwise exchange)",
                   {"ring", "vendor", "auto"});
}

Config read_config(const Deck& d, int world) {
  Config c;
  c.base = dp_app::read_config(d, world);
  const auto& ms = c.base.model;
  c.degree = int(d.get_int("ep.degree"));
  if (ms.kind != "gpt") input_error("model.kind", "\"" + ms.kind + "\"", "partrain-ep trains the GPT with a mixture of experts");
  if (!ms.gpt.moe.enabled())
    input_error("model.gpt.moe.every", "0", "partrain-ep needs a mixture of experts (model.gpt.moe.every > 0)");
  if (world % c.degree != 0)
    input_error("ep.degree", std::to_string(c.degree), "the rank count " + std::to_string(world) + " is not a multiple of it");
  if (ms.gpt.moe.experts % c.degree != 0)
    input_error("ep.degree", std::to_string(c.degree),
                "does not divide model.gpt.moe.experts = " + std::to_string(ms.gpt.moe.experts));
  if (c.base.dp.reduce_fp32)
    input_error("dp.grad_reduce_dtype", "\"fp32\"", "partrain-ep reduces the gradients in their own type");
  coll::parse(d.get_string("ep.algorithm"), c.a2a_algo);
  return c;
}

}  // namespace partrain::ep_app
