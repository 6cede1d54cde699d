#include "zero_config.hpp"

#include "partrain/core/error.hpp"

namespace partrain::zero_app {

void declare_keys(Deck& d) {
  models::declare_model_keys(d);
  models::declare_train_keys(d);
  d.declare_int("zero.stage", 1, "ZeRO stage: 0 (plain data parallelism) to 3 (parameters sharded too)", 0, 3);
  d.declare_string("zero.offload", "none", "optimizer state (and at stage 3 the parameters) offloaded",
                   {"none", "host", "file"});
  d.declare_string("zero.offload_dir", "", "directory of the offload files (zero.offload = \"file\")");
  d.declare_float("zero.offload_buffer_mib", 4.0, "staging buffer of the file offload, MiB", 0.0, 1e6, true);
  d.declare_float("zero.bucket_mib", 1.0, "gradient bucket size in MiB (stages 0-2; whole tensors per bucket)", 0.0,
                  1e6, true);
  d.declare_bool("zero.prefetch", true, "stage 3: gather the next layer while this one computes");
  d.declare_bool("zero.overlap", true, "launch the gradient collectives during the backward");
  d.declare_string("zero.algorithm", "auto", "algorithm of the collectives",
                   {"ring", "recdbl", "vendor", "shm", "auto"});
  d.declare_int("zero.pure_comm_reps", 5, "repetitions of the communication-only replay (t_pure)", 1, 1000);
}

std::int64_t parameter_count(const models::ModelSpec& spec) {
  if (spec.kind == "gpt") {
    const auto& g = spec.gpt;
    const std::int64_t C = g.channels;
    return g.vocab * C + g.seq_len * C + g.layers * (12 * C * C + 13 * C) + 2 * C;
  }
  std::int64_t n = 0;
  for (std::size_t i = 0; i + 1 < spec.mlp.widths.size(); ++i) n += (spec.mlp.widths[i] + 1) * spec.mlp.widths[i + 1];
  return n;
}

Config read_config(const Deck& d, int world) {
  Config c;
  c.model = models::read_model_spec(d);
  c.train = models::read_train_spec(d);
  models::require_kind(c.model, "partrain-zero", {"gpt", "mlp"});
  if (c.train.optimizer.kind == "adagrad")
    input_error("train.optimizer", "\"adagrad\"", "partrain-zero shards SGD, Adam and AdamW");
  auto& z = c.zero;
  z.stage = int(d.get_int("zero.stage"));
  z.offload = d.get_string("zero.offload");
  z.offload_dir = d.get_string("zero.offload_dir");
  z.offload_buffer_mib = d.get_float("zero.offload_buffer_mib");
  z.bucket_mib = d.get_float("zero.bucket_mib");
  z.prefetch = d.get_bool("zero.prefetch");
  z.overlap = d.get_bool("zero.overlap");
  coll::parse(d.get_string("zero.algorithm"), z.algo);
  c.pure_comm_reps = int(d.get_int("zero.pure_comm_reps"));
  if (c.train.global_batch < world)  // B/n or B/n + 1 samples per rank (parallel::share_of)
    input_error("train.batch", std::to_string(c.train.global_batch),
                "gives a rank no sample: it must be at least the " + std::to_string(world) + " data-parallel ranks");
  const std::int64_t psi = parameter_count(c.model);
  if (world > psi)
    input_error("ranks", std::to_string(world), "more data-parallel ranks than the model's " + std::to_string(psi) +
                                                    " parameters: a shard would be empty");
  if (z.offload == "file") {
    const std::int64_t e = c.model.dtype == "fp64" ? 8 : 4;
    const auto& oc = c.train.optimizer;
    // the state (m, v), then stage 3's parameters or a 16-bit run's fp32 master weights
    const bool half = c.train.precision != "fp32";
    const std::int64_t slabs = (oc.kind == "sgd" ? (oc.momentum > 0 ? 1 : 0) : 2) + (z.stage == 3 || half ? 1 : 0);
    const std::int64_t shard = z.stage == 0 ? psi : (psi + world - 1) / world + 4096;  // blocks round up per unit
    parallel::zero::OffloadFile<float>::check_directory("zero.offload_dir", z.offload_dir, slabs * shard * e);
  } else if (!z.offload_dir.empty()) {
    input_error("zero.offload_dir", "\"" + z.offload_dir + "\"", "is only used with zero.offload = \"file\"");
  }
  return c;
}

}  // namespace partrain::zero_app
