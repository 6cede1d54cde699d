#include "dp_config.hpp"

#include "partrain/core/error.hpp"

namespace partrain::dp_app {

void declare_keys(Deck& d) {
  models::declare_model_keys(d);
  models::declare_train_keys(d);
  d.declare_string("dp.algorithm", "auto", "gradient allreduce algorithm (auto: shm zero-copy on one node)",
                   {"ring", "recdbl", "vendor", "shm", "auto"});
  d.declare_float("dp.bucket_mib", 25.0, "gradient bucket size in MiB (whole layers per bucket)", 0.0, 1e6, true);
  d.declare_bool("dp.overlap", true, "launch each bucket's allreduce during backward and progress it between layers");
  d.declare_int("dp.pure_comm_reps", 5, "repetitions of the communication-only replay (t_pure)", 1, 1000);
}

Config read_config(const Deck& d, int world) {
  Config c;
  c.model = models::read_model_spec(d);
  c.train = models::read_train_spec(d);
  models::require_fp32_training(c.train);
  if (c.train.global_batch % world != 0)
    input_error("train.batch", std::to_string(c.train.global_batch),
                "must be divisible by the " + std::to_string(world) + " data-parallel replicas");
  coll::parse(d.get_string("dp.algorithm"), c.dp.algo);
  c.dp.bucket_mib = d.get_float("dp.bucket_mib");
  c.dp.overlap = d.get_bool("dp.overlap");
  c.pure_comm_reps = int(d.get_int("dp.pure_comm_reps"));
  return c;
}

}  // namespace partrain::dp_app
