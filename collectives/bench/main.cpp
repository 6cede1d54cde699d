// partrain-collectives: is my interconnect behaving? Times one collective over a range of message sizes with
// the suite's algorithms and the MPI library's own, reports algbw and busbw (nccl-tests conventions), verifies
// every size exactly, and writes an HDF5 result file with provenance.
//   mpiexec -n 2 partrain-collectives -o allreduce -a all -b 64K -e 64M -f 4 --output coll.h5
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "harness.hpp"
#include "partrain/collectives/wait.hpp"
#include "partrain/core/cli.hpp"
#include "partrain/core/error.hpp"
#include "partrain/core/log.hpp"
#include "partrain/core/runtime.hpp"
#include "partrain/io/provenance.hpp"
#include "partrain/perf/profile.hpp"
#include "partrain/perf/step_model.hpp"

namespace {
using namespace partrain;
using namespace partrain::coll;

std::string options_toml(const bench::Options& o) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "op = \"%s\"\nalgo = \"%s\"\nminbytes = \"%s\"\nmaxbytes = \"%s\"\nstepfactor = %g\niters = %d\n"
                "warmup = %d\ncheck = %s\ndatatype = \"%s\"\ninplace = %s\nchunk = \"%s\"\npretend_node_size = %d\n",
                o.op.c_str(), o.algo.c_str(), o.min_bytes.c_str(), o.max_bytes.c_str(), o.step_factor, o.iters,
                o.warmup, o.check ? "true" : "false", o.datatype.c_str(), o.in_place ? "true" : "false",
                o.chunk.c_str(), o.pretend_node_size);
  return buf;
}

/// The performance model's time per call of every row (NaN where the profile has no fit for it): the profile's fit
/// for the algorithm the row ran (what auto resolved to), at the row's size, within a node or across nodes.
std::vector<double> predicted_times(const perf::MachineProfile& prof, const bench::Plan& p,
                                    const std::vector<bench::Row>& rows, int nranks, bool spans_nodes) {
  std::vector<double> out;
  std::string note;
  for (const auto& r : rows) {
    const double t = perf::collective_seconds(prof, name(r.resolved), name(p.op), nranks, double(r.bytes), spans_nodes, &note);
    out.push_back(t >= 0 ? t : std::nan(""));
  }
  return out;
}

void write_result(const std::string& path, bool overwrite, const io::Provenance& prov, const bench::Options& o,
                  const bench::Plan& p, const std::vector<bench::Row>& rows, double copy_bw,
                  const std::vector<double>& predicted, const perf::MachineProfile* prof, const std::string& prof_path) {
  io::H5Writer w(path, overwrite);
  io::write_provenance(w, prov);
  const hid_t root = w.root();
  w.attr(root, "app", std::string("partrain-collectives"));
  w.attr(root, "strategy", std::string("collectives"));
  w.attr(root, "model", std::string("none"));
  w.attr(root, "dp", std::int64_t(prov.nranks));
  w.attr(root, "tp", std::int64_t(1));
  w.attr(root, "pp", std::int64_t(1));
  w.attr(root, "config_toml", options_toml(o));
  w.attr(root, "op", std::string(name(p.op)));
  w.attr(root, "datatype", std::string(name(p.dt)));
  w.attr(root, "in_place", std::int64_t(p.in_place));
  w.attr(root, "wait_policy", std::string(wait_policy_name(wait_policy())));
  w.attr(root, "copy_bandwidth_Bps", copy_bw);
  if (prof) {
    w.attr(root, "profile", prof_path);
    w.attr(root, "profile_name", prof->name);
  }
  const hid_t g = w.group("collectives");
  for (const Algo a : p.algos) {
    std::vector<std::int64_t> bytes, wrong;
    std::vector<double> tmin, tavg, tmax, algbw, busbw, mem, trank, pred;
    std::string resolved;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      if (r.algo != a) continue;
      if (!predicted.empty()) pred.push_back(predicted[i]);
      bytes.push_back(r.bytes);
      wrong.push_back(r.wrong);
      tmin.push_back(r.t_min);
      tavg.push_back(r.t_avg);
      tmax.push_back(r.t_max);
      algbw.push_back(r.algbw);
      busbw.push_back(r.busbw);
      mem.push_back(r.mem_busbw);
      trank.insert(trank.end(), r.t_rank.begin(), r.t_rank.end());
      resolved += (resolved.empty() ? "" : ",") + std::string(name(r.resolved));
    }
    const hid_t ga = w.group(std::string("collectives/") + name(a));
    const hsize_t S = bytes.size(), R = hsize_t(prov.nranks);
    w.dataset<std::int64_t>(ga, "size_bytes", bytes.data(), {S}, {"B", "message size (the whole vector)"});
    w.dataset<double>(ga, "time_min_s", tmin.data(), {S}, {"s", "mean time per call on each rank, minimum over ranks"});
    w.dataset<double>(ga, "time_avg_s", tavg.data(), {S}, {"s", "mean time per call on each rank, average over ranks"});
    w.dataset<double>(ga, "time_max_s", tmax.data(), {S}, {"s", "mean time per call on each rank, maximum over ranks"});
    w.dataset<double>(ga, "time_s", trank.data(), {S, R}, {"s", "mean time per call of every rank [size, rank]"});
    w.dataset<double>(ga, "algbw_GBps", algbw.data(), {S}, {"GB/s", "size / time_max (1 GB = 1e9 B)"});
    w.dataset<double>(ga, "busbw_GBps", busbw.data(), {S}, {"GB/s", "algbw times the nccl-tests bus factor (busbw_factor)"});
    w.dataset<double>(ga, "mem_busbw_GBps", mem.data(), {S},
                      {"GB/s", "allreduce: memory-bandwidth limit, each rank's unavoidable bytes moved locally, as busbw"});
    w.dataset<std::int64_t>(ga, "wrong", wrong.data(), {S}, {"1", "wrong output elements over all ranks (-1: not checked)"});
    if (!pred.empty())
      w.dataset<double>(ga, "predicted_time_s", pred.data(), {S},
                        {"s", "the performance model's time per call (--profile's fit for the algorithm run; NaN: no fit)"});
    w.attr(ga, "resolved_algorithms", resolved);
    w.attr(ga, "busbw_factor", busbw_factor(p.op, prov.nranks));
    w.attr(ga, "skew", p.skew);
  }
  (void)g;
  w.commit();
}

}  // namespace

int main(int argc, char** argv) {
  return run_app("partrain-collectives", argc, argv, [&](Runtime& rt) {
    CLI::App app{"partrain-collectives: collective bandwidth and latency, verified", "partrain-collectives"};
    bench::Options o;
    int check = 1;
    app.add_option("-o,--op", o.op, "allreduce | reduce_scatter | allgather | broadcast | alltoall")->capture_default_str();
    app.add_option("-a,--algo", o.algo, "ring | recdbl | tree | vendor | shm | hier | auto | all")->capture_default_str();
    app.add_option("-b,--minbytes", o.min_bytes, "smallest message (K, M, G suffixes)")->capture_default_str();
    app.add_option("-e,--maxbytes", o.max_bytes, "largest message")->capture_default_str();
    app.add_option("-f,--stepfactor", o.step_factor, "size multiplier between rows")->capture_default_str();
    app.add_option("--skew", o.skew,
                   "alltoall: uneven shares (alltoallv), this many times as many elements to rank 0 as to each other "
                   "rank (a hot expert rank)")
        ->capture_default_str();
    app.add_option("-n,--iters", o.iters, "timed calls per size")->capture_default_str();
    app.add_option("-w,--warmup", o.warmup, "untimed calls per size")->capture_default_str();
    app.add_option("-c,--check", check, "verify every size (1) or not (0)")->capture_default_str();
    app.add_option("-d,--datatype", o.datatype, "float | double | bf16 | fp16")->capture_default_str();
    app.add_flag("--inplace", o.in_place, "in-place calls");
    app.add_option("--pretend-node-size", o.pretend_node_size,
                   "treat consecutive groups of this many ranks as nodes (hierarchical algorithms on one machine)");
    app.add_flag("--zero-copy", o.zero_copy, "allreduce in place on a buffer in a shared window (shm: one pass)");
    app.add_option("--chunk", o.chunk, "pipeline chunk of the ring algorithms")->capture_default_str();
    app.add_option("--output", o.output, "HDF5 result file");
    std::string profile_path = std::getenv("PARTRAIN_PROFILE") ? std::getenv("PARTRAIN_PROFILE") : "";
    app.add_option("--profile", profile_path,
                   "machine profile (partrain-calibrate) to predict every size with, stored beside the measurement "
                   "(default: $PARTRAIN_PROFILE)")
        ->type_name("FILE.toml");
    app.add_flag("--overwrite", o.overwrite, "replace an existing result file");
    double timeout_s = 900;
    app.add_option("--timeout", timeout_s,
                   "watchdog: a wait longer than this many seconds ends the job with a line saying what hung (0: off)")
        ->type_name("SECONDS")
        ->capture_default_str();
    app.footer(kKokkosFooter);
    if (int rc = parse_command_line(app, argc, argv); rc >= 0) return rc;
    if (check != 0 && check != 1) input_error("--check", std::to_string(check), "must be 0 or 1");
    o.check = check != 0;
    bench::Plan plan = bench::make_plan(o);
    if (!o.output.empty()) io::check_output_path("--output", o.output, o.overwrite);
    if (!(timeout_s >= 0)) {
      char v[64];
      std::snprintf(v, sizeof v, "%g", timeout_s);
      input_error("--timeout", v, "must be >= 0 seconds (0 turns the watchdog off)");
    }
    coll::set_watchdog(timeout_s);
    if (o.pretend_node_size < 0)
      input_error("--pretend-node-size", std::to_string(o.pretend_node_size), "must be >= 0");
    std::unique_ptr<perf::MachineProfile> prof;
    if (!profile_path.empty()) {
      const char* env = std::getenv("PARTRAIN_PROFILE");
      prof = std::make_unique<perf::MachineProfile>(
          perf::read_profile(env && profile_path == env ? "PARTRAIN_PROFILE" : "--profile", profile_path));
    }
    rt.check_inputs();
    MpiCommunicator comm(MPI_COMM_WORLD, o.pretend_node_size);
    // Algorithms this communicator cannot run: dropped from --algo all, an error (on every rank) if named.
    auto unavailable = [&](Algo a) {
      return (a == Algo::Shm && !comm.single_node()) || (a == Algo::Hier && !comm.node_comm());
    };
    if (o.algo == "all") plan.algos.erase(std::remove_if(plan.algos.begin(), plan.algos.end(), unavailable), plan.algos.end());
    else if (unavailable(plan.algos.front()))
      input_error("--algo", o.algo, plan.algos.front() == Algo::Shm ? "needs every rank on one node"
                                                                   : "needs several nodes of equal size with more than one rank each");
    rt.inputs_done();
    const auto prov = io::collect_provenance(MPI_COMM_WORLD, argc, argv);
    const double copy_bw = bench::measure_copy_bandwidth(comm);
    log0("# partrain-collectives, " + std::to_string(rt.size()) + " ranks on " + prov.hostnames);
    log0("# threading: " + prov.threading + "; wait policy " + coll::wait_policy_name(coll::wait_policy()));
    char line[256];
    std::snprintf(line, sizeof line,
                  "# memcpy bandwidth (64 MiB, one core per rank, all ranks at once): %.2f GB/s copied", copy_bw / 1e9);
    log0(line);
    const auto rows = bench::run(comm, plan);

    std::int64_t wrong = 0;
    for (const Algo a : plan.algos) {
      double sum = 0;
      int k = 0;
      for (const auto& r : rows)
        if (r.algo == a) {
          sum += r.busbw;
          ++k;
          wrong += r.wrong > 0 ? r.wrong : 0;
        }
      std::snprintf(line, sizeof line, "# Avg bus bandwidth (%s): %.3f GB/s", name(a), k ? sum / k : 0.0);
      log0(line);
    }
    log0("# Wrong elements: " + std::to_string(wrong) + (plan.check ? "" : " (not checked)"));
    std::vector<double> predicted;
    if (prof) {  // the model beside the largest size of each algorithm
      predicted = predicted_times(*prof, plan, rows, rt.size(), !comm.single_node() || o.pretend_node_size > 0);
      for (const Algo a : plan.algos)
        for (std::size_t i = rows.size(); i-- > 0;)
          if (rows[i].algo == a) {
            std::snprintf(line, sizeof line, "# predicted (%s, profile %s) at %lld B: %.2f us per call, measured %.2f (%+.1f%%)",
                          name(a), prof->name.c_str(), (long long)rows[i].bytes, predicted[i] * 1e6, rows[i].t_max * 1e6,
                          100.0 * (predicted[i] / rows[i].t_max - 1));
            log0(line);
            break;
          }
    }
    if (!o.output.empty() && rt.rank() == 0) {
      write_result(o.output, o.overwrite, prov, o, plan, rows, copy_bw, predicted, prof.get(), profile_path);
      log0("# result written to " + o.output);
    }
    return wrong > 0 ? 1 : 0;
  });
}
