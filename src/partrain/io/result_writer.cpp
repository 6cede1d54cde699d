#include "partrain/io/result_writer.hpp"

#include <algorithm>
#include <map>

#include "partrain/collectives/wait.hpp"
#include "partrain/core/error.hpp"

namespace partrain::io {

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

namespace {

template <class T>
std::vector<T> gather(MPI_Comm comm, const std::vector<T>& mine, MPI_Datatype type) {
  int n = 1, r = 0;
  MPI_Comm_size(comm, &n);
  MPI_Comm_rank(comm, &r);
  std::vector<T> all(r == 0 ? mine.size() * std::size_t(n) : 0);
  MPI_Request req;
  PARTRAIN_MPI_CHECK(MPI_Igather(mine.data(), int(mine.size()), type, all.data(), int(mine.size()), type, 0, comm, &req));
  coll::wait(req);
  return all;  // rank-major: all[r·len + i]
}

/// rank-major [R, S] → step-major [S, R]
std::vector<double> transpose(const std::vector<double>& rm, std::size_t R, std::size_t S) {
  std::vector<double> out(R * S);
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t s = 0; s < S; ++s) out[s * R + r] = rm[r * S + s];
  return out;
}

}  // namespace

std::string phase_description(const std::string& p) {
  static const std::map<std::string, std::string> known = {
      {"forward", "forward pass and loss, compute only"},
      {"backward", "backward pass, less the communication calls made between layers"},
      {"comm", "span from the first gradient bucket's launch to the last one's completion"},
      {"comm_exposed", "time inside data-parallel communication calls (launches, progress, final wait)"},
      {"optimizer", "optimizer update"},
      {"tp_comm", "time in the tensor-parallel collectives inside forward and backward"},
      {"bubble", "pipeline: time idle waiting for a neighbouring stage"},
      {"p2p", "pipeline: time in point-to-point activation and gradient transfers"},
      {"embedding_sync", "pipeline: the tied embedding's gradient summed between first and last stage"},
      {"busy", "this rank's own work in the step (compute and optimizer), none of its waits for other ranks"},
      {"wait_for_others", "the slowest rank's busy time less this rank's: what this rank waited for the slowest "
                          "(load imbalance), inside its exposed communication or bubble"},
  };
  auto it = known.find(p);
  return it != known.end() ? it->second : "phase " + p + " of each step";
}

void write_result(MPI_Comm comm, const Provenance& prov, const RunInfo& info, const RankRecord& mine) {
  int rank = 0, n = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &n);
  const std::size_t S = mine.time_s.size(), R = std::size_t(n);

  const auto times = gather(comm, mine.time_s, MPI_DOUBLE);
  PARTRAIN_REQUIRE(mine.wall_s.empty() || mine.wall_s.size() == S, "back-to-back series length differs from the step count");
  const auto walls = gather(comm, mine.wall_s, MPI_DOUBLE);
  std::vector<std::pair<std::string, std::vector<double>>> phases;
  for (const auto& [name, series] : mine.phases) {
    PARTRAIN_REQUIRE(series.size() == S, "phase series length differs from the step count: " + name);
    phases.emplace_back(name, gather(comm, series, MPI_DOUBLE));
  }
  std::vector<std::int64_t> mem(mine.memory.peak.begin(), mine.memory.peak.end());
  mem.push_back(mine.rss_peak_bytes);
  const auto mems = gather(comm, mem, MPI_INT64_T);
  std::vector<std::int64_t> comm_counts;
  for (int op = 0; op < coll::kNumOps; ++op) {
    const auto& c = mine.comm[coll::Op(op)];
    comm_counts.insert(comm_counts.end(), {c.bytes_sent, c.bytes_received, c.calls, c.bus_bytes});
  }
  const auto comms = gather(comm, comm_counts, MPI_INT64_T);
  if (rank != 0) return;

  H5Writer w(info.path, info.overwrite);
  write_provenance(w, prov);
  const hid_t root = w.root();
  w.attr(root, "app", info.app);
  w.attr(root, "strategy", info.strategy);
  w.attr(root, "model", info.model);
  w.attr(root, "dp", std::int64_t(info.dp));
  w.attr(root, "tp", std::int64_t(info.tp));
  w.attr(root, "pp", std::int64_t(info.pp));
  w.attr(root, "config_toml", info.config_toml);
  w.attr(root, "warmup_steps", info.warmup_steps);
  for (const auto& [k, v] : info.attrs) w.attr(root, k, v);

  const hid_t steps = w.group("steps");
  w.dataset<double>(steps, "loss", info.loss.data(), {hsize_t(info.loss.size())},
                    {"nats", "mean cross-entropy over the global batch per step, before that step's update"});
  w.dataset<double>(steps, "time_s", transpose(times, R, S).data(), {hsize_t(S), hsize_t(R)},
                    {"s", "time of every step from its start barrier [step, rank]; the first warmup_steps are excluded "
                          "from /summary"});
  if (!mine.wall_s.empty())
    w.dataset<double>(steps, "wall_s", transpose(walls, R, S).data(), {hsize_t(S), hsize_t(R)},
                      {"s", "back to back: the wall clock from the previous step's end to this step's end [step, rank] "
                            "(the step's start barrier and the step line's agreement included; checkpoints and the "
                            "state dump not)"});
  const hid_t ph = w.group("steps/phases");
  for (const auto& [name, rm] : phases)
    w.dataset<double>(ph, name + "_s", transpose(rm, R, S).data(), {hsize_t(S), hsize_t(R)},
                      {"s", phase_description(name) + " [step, rank]"});

  const hid_t memg = w.group("memory");
  const std::size_t per = std::size_t(kMemCategories) + 1;
  for (int c = 0; c <= kMemCategories; ++c) {
    std::vector<std::int64_t> col(R);
    for (std::size_t r = 0; r < R; ++r) col[r] = mems[r * per + std::size_t(c)];
    const std::string name = c < kMemCategories ? std::string(category_name(MemCategory(c))) + "_bytes" : "rss_peak_bytes";
    w.dataset<std::int64_t>(memg, name, col.data(), {hsize_t(R)},
                            {"B", c < kMemCategories ? "peak live bytes of the " + std::string(category_name(MemCategory(c))) +
                                                           " allocations of every rank (memory tracker)"
                                                     : std::string("peak resident set size (VmHWM) of every rank")});
  }

  for (int op = 0; op < coll::kNumOps; ++op) {
    std::vector<std::int64_t> sent(R), recv(R), calls(R), bus(R);
    std::int64_t total_calls = 0;
    for (std::size_t r = 0; r < R; ++r) {
      const std::size_t base = r * coll::kNumOps * 4 + std::size_t(op) * 4;
      sent[r] = comms[base];
      recv[r] = comms[base + 1];
      calls[r] = comms[base + 2];
      bus[r] = comms[base + 3];
      total_calls += calls[r];
    }
    if (total_calls == 0) continue;
    const hid_t g = w.group(std::string("comm/") + coll::name(coll::Op(op)));
    const std::string op_name = coll::name(coll::Op(op));
    w.dataset<std::int64_t>(g, "bytes_sent", sent.data(), {hsize_t(R)}, {"B", "bytes every rank sent in " + op_name});
    w.dataset<std::int64_t>(g, "bytes_received", recv.data(), {hsize_t(R)},
                            {"B", "bytes every rank received in " + op_name});
    w.dataset<std::int64_t>(g, "calls", calls.data(), {hsize_t(R)}, {"1", op_name + " calls of every rank"});
    w.dataset<std::int64_t>(g, "bus_bytes", bus.data(), {hsize_t(R)},
                            {"B", "bus bytes of every rank's " + op_name + " calls: the size times nccl-tests' bus factor "
                                  "(2(n-1)/n allreduce, (n-1)/n reduce-scatter, allgather, alltoall; 1 broadcast, "
                                  "send), the same whatever the algorithm"});
  }

  for (const auto& x : info.extra) {
    const auto slash = x.path.rfind('/');
    const hid_t g = w.group(x.path.substr(0, slash));
    w.dataset<double>(g, x.path.substr(slash + 1), x.values.data(), x.dims, x.meta);
  }
  const hid_t sum = w.group("summary");
  for (const auto& [k, v] : info.summary) w.attr(sum, k, v);
  w.commit();
}

}  // namespace partrain::io
