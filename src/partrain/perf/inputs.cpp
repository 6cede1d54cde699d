#include "partrain/perf/inputs.hpp"

#include "partrain/core/error.hpp"

namespace partrain::perf {
namespace {

/// "auto" stays a tuner's choice: the fastest algorithm the profile has a fit for (on one node of this machine, shm —
/// what the trainers' auto picks; a mini-app's own run replaces it with the algorithm its trainer resolved).
std::string resolve(const std::string& algo, int /*ranks_per_node*/) { return algo; }

}  // namespace

StepInputs step_inputs(const DeckTable& d, const std::string& strategy, int ranks, int ranks_per_node,
                       const models::ModelSpec& model, const models::TrainSpec& train) {
  StepInputs in;
  in.model = model;
  in.train = train;
  // train.precision bf16/fp16 is mixed-precision training: the step model's 16-bit dtype (step_model.hpp)
  if (train.precision == "bf16" || train.precision == "fp16") in.model.dtype = train.precision;
  in.grad_reduce_fp32 = d.get_string("dp", "grad_reduce_dtype", "half") == "fp32";
  in.ranks_per_node = ranks_per_node;
  in.ranks_on_node = ranks_per_node > 0 ? ranks_per_node : ranks;
  in.strategy = strategy.rfind("tp+", 0) == 0 ? "tp" : strategy;  // tp+sp, tp+cp, tp+sp+cp
  in.algo = resolve(d.get_string("dp", "algorithm", "auto"), ranks_per_node);
  in.bucket_bytes = d.get_number("dp", "bucket_mib", 25.0) * 1048576;
  in.overlap = d.get_bool("dp", "overlap", true);
  auto divide = [&](const char* key, int degree) {
    if (degree < 1 || ranks % degree != 0)
      input_error(key, std::to_string(degree), "must divide the ranks (" + std::to_string(ranks) + ")");
    return ranks / degree;
  };
  if (in.strategy == "serial") {
    in.dp = 1;
  } else if (in.strategy == "dp") {
    in.dp = ranks;
  } else if (in.strategy == "tp" || in.strategy == "pp") {
    in.tp = int(d.get_int("tp", "degree", in.strategy == "tp" ? 2 : 1));
    in.sequence_parallel = d.get_bool("tp", "sequence_parallel", false);
    in.tp_algo = d.get_string("tp", "algorithm", "ring");
    if (in.strategy == "pp") {
      in.pp = int(d.get_int("pp", "degree", 2));
      in.schedule = d.get_string("pp", "schedule", "1f1b");
      in.microbatches = int(d.get_int("pp", "microbatches", 4));
      in.chunks = int(d.get_int("pp", "chunks", 1));
      in.recompute = d.get_bool("pp", "recompute", false);
    }
    if (in.strategy == "tp") {
      in.cp = int(d.get_int("cp", "degree", 1));
      in.cp_kind = d.get_string("cp", "kind", "ring");
      const std::string a = d.get_string("cp", "algorithm", "auto");
      in.cp_algo = a == "auto" ? "ring" : a;  // auto: the pairwise exchange
    }
    in.dp = divide(in.strategy == "tp" ? (in.cp > 1 ? "tp.degree × cp.degree" : "tp.degree") : "pp.degree × tp.degree",
                   in.tp * in.pp * in.cp);
  } else if (in.strategy == "zero") {
    in.dp = ranks;
    in.zero_stage = int(d.get_int("zero", "stage", 1));
    in.prefetch = d.get_bool("zero", "prefetch", true);
    in.overlap = d.get_bool("zero", "overlap", true);
    in.bucket_bytes = d.get_number("zero", "bucket_mib", 1.0) * 1048576;
    in.algo = resolve(d.get_string("zero", "algorithm", "auto"), ranks_per_node);
  } else if (in.strategy == "nmt") {
    in.pp = int(d.get_int("nmt", "model_parallel", 1));
    const int replicas = int(d.get_int("nmt", "replicas", 0));
    in.dp = replicas > 0 ? replicas : divide("nmt.model_parallel", in.pp);
    in.time_chunk = d.get_int("nmt", "time_chunk", 4);
    in.bucket_bytes = d.get_number("nmt", "bucket_mib", 4.0) * 1048576;
    in.algo = resolve(d.get_string("nmt", "algorithm", "auto"), ranks_per_node);
  } else if (in.strategy == "ep") {
    in.dp = ranks;
    in.ep = int(d.get_int("ep", "degree", ranks));
    divide("ep.degree", in.ep);
    const std::string a = d.get_string("ep", "algorithm", "auto");
    in.a2a_algo = a == "auto" ? "ring" : a;  // auto: the pairwise exchange
  } else if (in.strategy == "ps") {
    in.servers = int(d.get_int("ps", "servers", 1));
    const int sched = d.get_bool("ps", "scheduler", false) ? 1 : 0;
    const int w = int(d.get_int("ps", "workers", 0));
    in.workers = (w > 0 ? w : ranks - in.servers - sched) - int(d.get_int("ps", "spares", 0));  // spares idle
    if (in.workers < 1) input_error("ps.servers", std::to_string(in.servers), "leaves no worker among " + std::to_string(ranks) + " ranks");
    in.ps_mode = d.get_string("ps", "mode", "bsp");
    in.ps_hybrid = d.get_bool("ps", "hybrid", false);
    in.dp = in.workers;
  } else {
    input_error("strategy", strategy, "has no performance model");
  }
  return in;
}

}  // namespace partrain::perf
