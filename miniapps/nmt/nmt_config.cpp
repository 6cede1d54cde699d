#include "nmt_config.hpp"

#include "partrain/core/error.hpp"

namespace partrain::nmt_app {

void declare_keys(Deck& d) {
  models::declare_model_keys(d);
  models::declare_train_keys(d);
  d.declare_int("nmt.model_parallel", 1, "k: ranks a replica's layers are spread over (GNMT's layer per device)", 1, 1024);
  d.declare_int("nmt.replicas", 0, "replicas (0: ranks / k)", 0, 1 << 20);
  d.declare_string("nmt.update", "sync", "how replicas combine their gradients", {"sync", "async"});
  d.declare_int("nmt.time_chunk", 4, "time steps per wavefront chunk (the unit of the point-to-point messages)", 1, 1 << 16);
  d.declare_string("nmt.algorithm", "auto", "the replicas' gradient allreduce (sync)", {"ring", "recdbl", "vendor", "shm", "auto"});
  d.declare_float("nmt.bucket_mib", 4.0, "gradient bucket size in MiB (sync)", 0.0, 1e6, true);
}

Config read_config(const Deck& d, int world) {
  Config c;
  c.model = models::read_model_spec(d);
  c.train = models::read_train_spec(d);
  if (c.model.kind != "nmt")
    input_error("model.kind", "\"" + c.model.kind + "\"", "partrain-nmt trains the NMT model: set model.kind = \"nmt\"");
  auto& o = c.nmt;
  o.model_parallel = int(d.get_int("nmt.model_parallel"));
  o.time_chunk = d.get_int("nmt.time_chunk");
  c.update = d.get_string("nmt.update");
  coll::parse(d.get_string("nmt.algorithm"), o.dp.algo);
  o.dp.bucket_mib = d.get_float("nmt.bucket_mib");
  o.dp.overlap = false;  // the stage's gradients are final only at the end of its backward
  parallel::nmt::Placement check(c.model.nmt, o.model_parallel);  // layers and vocabulary against k
  (void)check;
  if (c.update == "async")
    input_error("nmt.update", "\"async\"",
                "is not available in this build: asynchronous replicas through partrain-ps's servers are an open "
                "item of issue 15 (use \"sync\")");
  const int k = o.model_parallel;
  if (world % k != 0)
    input_error("nmt.model_parallel", std::to_string(k),
                "does not divide the " + std::to_string(world) + " ranks (ranks = replicas x model_parallel)");
  const auto R = d.get_int("nmt.replicas");
  o.replicas = R == 0 ? world / k : int(R);
  if (o.replicas * k != world)
    input_error("nmt.replicas", std::to_string(R),
                "times nmt.model_parallel = " + std::to_string(k) + " is " + std::to_string(o.replicas * k) +
                    " ranks, but the job has " + std::to_string(world));
  if (c.train.global_batch % o.replicas != 0)
    input_error("train.batch", std::to_string(c.train.global_batch),
                "must be divisible by the " + std::to_string(o.replicas) + " replicas");
  return c;
}

}  // namespace partrain::nmt_app
