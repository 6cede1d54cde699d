#include "tp_config.hpp"

#include "partrain/core/error.hpp"
#include "partrain/parallel/tp/gpt.hpp"

namespace partrain::tp_app {

void declare_keys(Deck& d, int default_degree) {
  dp_app::declare_keys(d);
  d.declare_int("tp.degree", default_degree, "tensor-parallel degree t", 1, 4096);
  d.declare_bool("tp.sequence_parallel", false, "shard LayerNorm regions by rows; reduce-scatter + allgather");
  d.declare_string("tp.algorithm", "ring", "tensor-parallel collectives' algorithm", {"ring", "recdbl", "vendor", "shm", "auto"});
}

Config read_config(const Deck& d, int world) {
  Config c;
  c.degree = int(d.get_int("tp.degree"));
  c.sequence_parallel = d.get_bool("tp.sequence_parallel");
  coll::parse(d.get_string("tp.algorithm"), c.algo);
  if (world % c.degree != 0)
    input_error("tp.degree", std::to_string(c.degree),
                "the rank count " + std::to_string(world) + " is not a multiple of it");
  c.base = dp_app::read_config(d, world / c.degree);
  models::require_dense(c.base.model, "partrain-tp");
  if (c.base.model.kind != "gpt") input_error("model.kind", "\"" + c.base.model.kind + "\"", "partrain-tp trains the GPT");
  parallel::check_tp_shapes(c.base.model.gpt, c.degree);
  const auto local_rows = c.base.train.global_batch / (world / c.degree) * c.base.model.gpt.seq_len;
  if (c.sequence_parallel && local_rows % c.degree != 0)
    input_error("tp.sequence_parallel", "true",
                "the " + std::to_string(local_rows) + " rows of a replica's batch do not divide by tp.degree = " +
                    std::to_string(c.degree));
  return c;
}

}  // namespace partrain::tp_app
