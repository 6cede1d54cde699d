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
  d.declare_int("nmt.servers", 1, "async: parameter-server ranks (ranks 0 .. servers-1)", 1, 4096);
  d.declare_int("nmt.delay_buffer", 0, "async: a replica more than D mini-batches behind the fastest holds up to D + 1 "
                "and pushes them together (0: off)", 0, 1 << 20);
  d.declare_string("nmt.algorithm", "auto", "the replicas' gradient allreduce (sync)", {"ring", "recdbl", "vendor", "shm", "auto"});
  d.declare_float("nmt.bucket_mib", 4.0, "gradient bucket size in MiB (sync)", 0.0, 1e6, true);
}

Config read_config(const Deck& d, int world, bool dump_state) {
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
  const int k = o.model_parallel;
  const bool async = c.update == "async";
  c.async.servers = int(d.get_int("nmt.servers"));
  c.async.delay_buffer = int(d.get_int("nmt.delay_buffer"));
  if (!async && c.async.delay_buffer != 0)
    input_error("nmt.delay_buffer", std::to_string(c.async.delay_buffer), "is only used with nmt.update = \"async\"");
  if (async && c.train.precision == "fp16" && c.async.delay_buffer > 0)
    input_error("nmt.delay_buffer", std::to_string(c.async.delay_buffer),
                "not with train.precision = fp16: the held mini-batches' gradients may carry different loss scales");
  if (async && dump_state)
    input_error("nmt.update", "\"async\"", "cannot be combined with --dump-state (\"sync\" can): after an asynchronous run the state depends on timing");
  const int S = async ? c.async.servers : 0;
  if (world - S < k)
    input_error(async ? "nmt.servers" : "nmt.model_parallel", std::to_string(async ? S : k),
                "leaves no replica: " + std::to_string(world) + " ranks, " + std::to_string(S) + " servers, replicas of " +
                    std::to_string(k) + " ranks");
  if ((world - S) % k != 0)
    input_error("nmt.model_parallel", std::to_string(k),
                "does not divide the " + std::to_string(world - S) + " ranks " +
                    (async ? "after the servers (ranks = servers + replicas x model_parallel)" : "(ranks = replicas x model_parallel)"));
  const auto R = d.get_int("nmt.replicas");
  o.replicas = R == 0 ? (world - S) / k : int(R);
  if (o.replicas * k + S != world)
    input_error("nmt.replicas", std::to_string(R),
                "times nmt.model_parallel = " + std::to_string(k) + (async ? " plus the servers" : "") + " is " +
                    std::to_string(o.replicas * k + S) + " ranks, but the job has " + std::to_string(world));
  if (c.train.global_batch % o.replicas != 0)
    input_error("train.batch", std::to_string(c.train.global_batch),
                "must be divisible by the " + std::to_string(o.replicas) + " replicas");
  return c;
}

}  // namespace partrain::nmt_app
