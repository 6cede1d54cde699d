#include "partrain/perf/inputs.hpp"

#include "partrain/core/error.hpp"

namespace partrain::perf {
namespace {

template <class V>
V get(const toml::table& t, const char* section, const char* key, V def) {
  const auto v = t[section][key].value<V>();
  return v ? *v : def;
}

/// "auto" stays a tuner's choice: the fastest algorithm the profile has a fit for (on one node of this machine, shm —
/// what the trainers' auto picks; a mini-app's own run replaces it with the algorithm its trainer resolved).
std::string resolve(const std::string& algo, int /*ranks_per_node*/) { return algo; }

}  // namespace

StepInputs step_inputs(const toml::table& d, const std::string& strategy, int ranks, int ranks_per_node,
                       const models::ModelSpec& model, const models::TrainSpec& train) {
  StepInputs in;
  in.model = model;
  in.train = train;
  in.ranks_per_node = ranks_per_node;
  in.ranks_on_node = ranks_per_node > 0 ? ranks_per_node : ranks;
  in.strategy = strategy == "tp+sp" ? "tp" : strategy;
  in.algo = resolve(get<std::string>(d, "dp", "algorithm", "auto"), ranks_per_node);
  in.bucket_bytes = get<double>(d, "dp", "bucket_mib", 25.0) * 1048576;
  in.overlap = get<bool>(d, "dp", "overlap", true);
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
    in.tp = int(get<std::int64_t>(d, "tp", "degree", in.strategy == "tp" ? 2 : 1));
    in.sequence_parallel = get<bool>(d, "tp", "sequence_parallel", false);
    in.tp_algo = get<std::string>(d, "tp", "algorithm", "ring");
    if (in.strategy == "pp") {
      in.pp = int(get<std::int64_t>(d, "pp", "degree", 2));
      in.schedule = get<std::string>(d, "pp", "schedule", "1f1b");
      in.microbatches = int(get<std::int64_t>(d, "pp", "microbatches", 4));
      in.chunks = int(get<std::int64_t>(d, "pp", "chunks", 1));
      in.recompute = get<bool>(d, "pp", "recompute", false);
    }
    in.dp = divide(in.strategy == "tp" ? "tp.degree" : "pp.degree × tp.degree", in.tp * in.pp);
  } else if (in.strategy == "zero") {
    in.dp = ranks;
    in.zero_stage = int(get<std::int64_t>(d, "zero", "stage", 1));
    in.prefetch = get<bool>(d, "zero", "prefetch", true);
    in.overlap = get<bool>(d, "zero", "overlap", true);
    in.bucket_bytes = get<double>(d, "zero", "bucket_mib", 1.0) * 1048576;
    in.algo = resolve(get<std::string>(d, "zero", "algorithm", "auto"), ranks_per_node);
  } else if (in.strategy == "nmt") {
    in.pp = int(get<std::int64_t>(d, "nmt", "model_parallel", 1));
    const int replicas = int(get<std::int64_t>(d, "nmt", "replicas", 0));
    in.dp = replicas > 0 ? replicas : divide("nmt.model_parallel", in.pp);
    in.time_chunk = get<std::int64_t>(d, "nmt", "time_chunk", 4);
    in.bucket_bytes = get<double>(d, "nmt", "bucket_mib", 4.0) * 1048576;
    in.algo = resolve(get<std::string>(d, "nmt", "algorithm", "auto"), ranks_per_node);
  } else if (in.strategy == "ps") {
    in.servers = int(get<std::int64_t>(d, "ps", "servers", 1));
    const int sched = get<bool>(d, "ps", "scheduler", false) ? 1 : 0;
    const int w = int(get<std::int64_t>(d, "ps", "workers", 0));
    in.workers = w > 0 ? w : ranks - in.servers - sched;
    if (in.workers < 1) input_error("ps.servers", std::to_string(in.servers), "leaves no worker among " + std::to_string(ranks) + " ranks");
    in.ps_mode = get<std::string>(d, "ps", "mode", "bsp");
    in.dp = in.workers;
  } else {
    input_error("strategy", strategy, "has no performance model");
  }
  return in;
}

}  // namespace partrain::perf
