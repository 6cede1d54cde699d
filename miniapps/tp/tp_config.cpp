#include "tp_config.hpp"

#include "partrain/core/error.hpp"
#include "partrain/parallel/tp/gpt.hpp"

namespace partrain::tp_app {

void declare_keys(Deck& d, int default_degree) {
  dp_app::declare_keys(d);
  d.declare_int("tp.degree", default_degree, "tensor-parallel degree t", 1, 4096);
  d.declare_bool("tp.sequence_parallel", false, "shard LayerNorm regions by rows; reduce-scatter + allgather");
  d.declare_string("tp.algorithm", "ring", "tensor-parallel collectives' algorithm", {"ring", "recdbl", "vendor", "shm", "auto"});
  d.declare_int("cp.degree", 1, "context-parallel degree: ranks splitting every sequence", 1, 4096);
  d.declare_string("cp.kind", "ring", "context-parallel attention: ring (zigzag chunks) or ulysses (all-to-all)",
                   {"ring", "ulysses"});
  d.declare_string("cp.algorithm", "auto", "algorithm of Ulysses' all-to-alls", {"ring", "vendor", "auto"});
}

Config read_config(const Deck& d, int world) {
  Config c;
  c.degree = int(d.get_int("tp.degree"));
  c.sequence_parallel = d.get_bool("tp.sequence_parallel");
  coll::parse(d.get_string("tp.algorithm"), c.algo);
  c.cp = int(d.get_int("cp.degree"));
  c.cp_kind = d.get_string("cp.kind") == "ulysses" ? parallel::CpKind::Ulysses : parallel::CpKind::Ring;
  coll::parse(d.get_string("cp.algorithm"), c.cp_algo);
  if (world % c.degree != 0)
    input_error("tp.degree", std::to_string(c.degree),
                "the rank count " + std::to_string(world) + " is not a multiple of it");
  if (world % (c.degree * c.cp) != 0)
    input_error("cp.degree", std::to_string(c.cp),
                "the rank count " + std::to_string(world) + " is not a multiple of tp.degree x cp.degree = " +
                    std::to_string(c.degree * c.cp));
  c.base = dp_app::read_config(d, world / (c.degree * c.cp));
  models::require_dense(c.base.model, "partrain-tp");
  if (c.base.model.kind != "gpt") input_error("model.kind", "\"" + c.base.model.kind + "\"", "partrain-tp trains the GPT");
  parallel::check_tp_shapes(c.base.model.gpt, c.degree);
  const auto& g = c.base.model.gpt;
  if (c.cp > 1 && c.cp_kind == parallel::CpKind::Ring && g.seq_len % (2 * c.cp) != 0)
    input_error("cp.degree", std::to_string(c.cp),
                "ring attention cuts every sequence into 2 x cp.degree chunks: model.gpt.seq_len = " +
                    std::to_string(g.seq_len) + " does not divide by " + std::to_string(2 * c.cp));
  if (c.cp > 1 && c.cp_kind == parallel::CpKind::Ulysses && g.seq_len % c.cp != 0)
    input_error("cp.degree", std::to_string(c.cp),
                "model.gpt.seq_len = " + std::to_string(g.seq_len) + " does not divide by it");
  if (c.cp > 1 && c.cp_kind == parallel::CpKind::Ulysses && (g.heads / c.degree) % c.cp != 0)
    input_error("cp.degree", std::to_string(c.cp),
                "Ulysses gives every rank heads / (tp.degree x cp.degree) heads: the " + std::to_string(g.heads / c.degree) +
                    " heads of a tensor-parallel rank do not divide by it");
  const auto local_rows = c.base.train.global_batch / (world / c.degree / c.cp) * (g.seq_len / c.cp);
  if (c.sequence_parallel && local_rows % c.degree != 0)
    input_error("tp.sequence_parallel", "true",
                "the " + std::to_string(local_rows) + " rows of a replica's batch do not divide by tp.degree = " +
                    std::to_string(c.degree));
  return c;
}

}  // namespace partrain::tp_app
