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
  d.declare_string("dp.grad_reduce_dtype", "half",
                   "train.precision bf16/fp16: reduce the gradients in their 16-bit type (half) or widened to fp32 "
                   "(fp32: Megatron's accumulate-allreduce-grads-in-fp32, twice the bytes and a 4-byte-per-parameter "
                   "buffer)",
                   {"half", "fp32"});
}

Config read_config(const Deck& d, int world, bool even) {
  Config c;
  c.model = models::read_model_spec(d);
  c.train = models::read_train_spec(d);
  if (c.train.global_batch < world)
    input_error("train.batch", std::to_string(c.train.global_batch),
                "gives a rank no sample: it must be at least the " + std::to_string(world) + " data-parallel ranks");
  if (even && c.train.global_batch % world != 0)
    input_error("train.batch", std::to_string(c.train.global_batch),
                "must be divisible by the " + std::to_string(world) + " data-parallel replicas");
  coll::parse(d.get_string("dp.algorithm"), c.dp.algo);
  c.dp.bucket_mib = d.get_float("dp.bucket_mib");
  c.dp.overlap = d.get_bool("dp.overlap");
  c.pure_comm_reps = int(d.get_int("dp.pure_comm_reps"));
  c.dp.reduce_fp32 = d.get_string("dp.grad_reduce_dtype") == "fp32";
  if (c.dp.reduce_fp32 && c.train.precision == "fp32")
    input_error("dp.grad_reduce_dtype", "\"fp32\"", "is for train.precision = bf16 or fp16 (fp32 gradients are reduced in fp32)");
  return c;
}

}  // namespace partrain::dp_app
