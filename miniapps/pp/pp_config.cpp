#include "pp_config.hpp"

#include <mpi.h>

#include <numeric>

#include "../tp/tp_config.hpp"
#include "partrain/core/error.hpp"
#include "partrain/parallel/tp/gpt.hpp"

namespace partrain::pp_app {

void declare_keys(Deck& d) {
  tp_app::declare_keys(d, 1);
  d.declare_int("pp.degree", 2, "pipeline stages p (ranks = p x data-parallel x tp.degree)", 1, 4096);
  d.declare_string("pp.schedule", "1f1b", "pipeline schedule", {"gpipe", "1f1b", "interleaved", "zb"});
  d.declare_int("pp.microbatches", 4, "microbatches m per step (of each data-parallel rank's samples)", 1, 1 << 20);
  d.declare_int("pp.chunks", 1, "model chunks v per stage (interleaved schedule)", 1, 1024);
  d.declare_choice_or_int_list("pp.partition", "uniform",
                               "how layers are cut: uniform, flops, or a list of layer counts per model chunk",
                               {"uniform", "flops"});
  d.declare_bool("pp.recompute", false, "keep only each chunk's input per microbatch; rerun the forward in backward");
  d.declare_int("ep.degree", 1,
                "expert parallelism: consecutive data-parallel replicas sharing each MoE block's experts (docs/ep.md)", 1,
                1 << 16);
  d.declare_string("ep.algorithm", "auto", "the token all-to-alls' algorithm (auto: pairwise exchange)",
                   {"ring", "vendor", "auto"});
}

Config read_config(const Deck& d, int world) {
  Config c;
  auto& pl = c.pipeline;
  auto& s = pl.schedule;
  s.p = int(d.get_int("pp.degree"));
  c.tp_degree = int(d.get_int("tp.degree"));
  if (d.get_int("cp.degree") > 1)  // the stages' activations and the executor's buffers are whole sequences
    input_error("cp.degree", std::to_string(d.get_int("cp.degree")),
                "partrain-pp does not split sequences; context parallelism runs in partrain-tp (docs/cp.md)");
  parallel::pipeline::parse(d.get_string("pp.schedule"), s.kind);
  s.m = int(d.get_int("pp.microbatches"));
  s.v = int(d.get_int("pp.chunks"));
  const auto stages = std::to_string(s.p), t = std::to_string(c.tp_degree);
  if (world % (s.p * c.tp_degree) != 0)
    input_error("pp.degree", stages,
                "the rank count " + std::to_string(world) + " is not a multiple of pp.degree x tp.degree = " +
                    std::to_string(s.p * c.tp_degree));
  c.dp_degree = world / (s.p * c.tp_degree);
  c.base = dp_app::read_config(d, c.dp_degree);
  const auto& ms = c.base.model;
  models::require_kind(ms, "partrain-pp", {"gpt", "mlp"});
  if (c.tp_degree > 1) models::require_dense(ms, "partrain-pp with tp.degree > 1");
  c.ep_degree = int(d.get_int("ep.degree"));
  coll::parse(d.get_string("ep.algorithm"), c.ep_algo);
  if (c.ep_degree > 1 && !(ms.kind == "gpt" && ms.gpt.moe.enabled()))
    input_error("ep.degree", std::to_string(c.ep_degree), "needs a mixture of experts (model.gpt.moe.every > 0)");
  if (c.dp_degree % c.ep_degree != 0)
    input_error("ep.degree", std::to_string(c.ep_degree),
                "does not divide the data-parallel degree " + std::to_string(c.dp_degree) + " (ranks / (pp.degree x tp.degree))");
  if (c.ep_degree > 1 && ms.gpt.moe.experts % c.ep_degree != 0)
    input_error("ep.degree", std::to_string(c.ep_degree),
                "does not divide model.gpt.moe.experts = " + std::to_string(ms.gpt.moe.experts));
  if (c.base.dp.reduce_fp32 && c.ep_degree > 1)
    input_error("dp.grad_reduce_dtype", "\"fp32\"", "is not combined with expert parallelism (ep.degree > 1)");
  if (const auto why = parallel::pipeline::why_not(s); !why.empty()) throw InputError(why);
  const std::int64_t B = c.base.train.global_batch;
  if (B % (std::int64_t(c.dp_degree) * s.m) != 0)
    input_error("train.batch", std::to_string(B),
                "must be divisible by the data-parallel degree x pp.microbatches = " + std::to_string(c.dp_degree) +
                    " x " + std::to_string(s.m));
  const std::int64_t layers = ms.kind == "gpt" ? ms.gpt.layers : std::int64_t(ms.mlp.widths.size()) - 1;
  const std::string layer_key = ms.kind == "gpt" ? "model.gpt.layers" : "model.mlp.widths";
  if (layers < s.chunks())
    input_error(layer_key, ms.kind == "gpt" ? std::to_string(layers) : Deck::render(ms.mlp.widths),
                "fewer layers (" + std::to_string(layers) + ") than pp.degree x pp.chunks = " + std::to_string(s.chunks()));
  const auto& part = d.get("pp.partition");
  if (std::holds_alternative<std::string>(part)) {
    pl.partition = std::get<std::string>(part);
  } else {
    pl.partition = "explicit";
    pl.partition_counts = std::get<Deck::IntList>(part);
    const auto sum = std::accumulate(pl.partition_counts.begin(), pl.partition_counts.end(), std::int64_t(0));
    if (std::int64_t(pl.partition_counts.size()) != s.chunks() || sum != layers)
      input_error("pp.partition", Deck::render(part),
                  "needs one layer count per model chunk (pp.degree x pp.chunks = " + std::to_string(s.chunks()) +
                      ") adding up to the " + std::to_string(layers) + " layers");
  }
  pl.recompute = d.get_bool("pp.recompute");
  pl.dp = c.base.dp;
  c.sequence_parallel = d.get_bool("tp.sequence_parallel");
  coll::parse(d.get_string("tp.algorithm"), c.tp_algo);
  if (c.tp_degree > 1) {
    if (ms.kind != "gpt") input_error("tp.degree", t, "tensor parallelism inside the stages needs the GPT");
    parallel::check_tp_shapes(ms.gpt, c.tp_degree);
    if (parallel::pipeline::splits_backward(s.kind))
      input_error("pp.schedule", "\"zb\"", "splits the backward, which the tensor-parallel layers do not (tp.degree = " + t + ")");
  }
  if (ms.kind == "gpt" && ms.gpt.moe.enabled() && parallel::pipeline::splits_backward(s.kind))
    input_error("pp.schedule", "\"zb\"", "splits the backward, which a mixture-of-experts block does not (model.gpt.moe.every = " +
                                             std::to_string(ms.gpt.moe.every) + ")");
  const std::int64_t mb_rows = B / c.dp_degree / s.m * (ms.kind == "gpt" ? ms.gpt.seq_len : 1);
  if (c.sequence_parallel && c.tp_degree > 1 && mb_rows % c.tp_degree != 0)
    input_error("tp.sequence_parallel", "true",
                "the " + std::to_string(mb_rows) + " rows of a microbatch do not divide by tp.degree = " + t);
  int flag = 0;
  void* ub = nullptr;
  MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &ub, &flag);
  const std::int64_t tag_ub = flag ? *static_cast<int*>(ub) : 32767;
  if (parallel::pipeline::StageLinks<float>::max_tag(s) > tag_ub)
    input_error("pp.microbatches", std::to_string(s.m),
                "too many microbatches x chunks for MPI's tag range (" + std::to_string(tag_ub) + ")");
  return c;
}

}  // namespace partrain::pp_app
