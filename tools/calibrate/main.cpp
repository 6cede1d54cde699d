// partrain-calibrate: measures this machine into a machine profile for the performance model
// (docs/model.md): fp32 gemm rates by shape class and of the thin products an LSTM step issues, the streaming,
// reduction, pointwise, optimizer and LSTM-cell rates of one rank with every rank busy, and α, β of every collective
// algorithm and operation the suite implements, fitted to partrain-collectives' own harness over 4 KiB – 16 MiB (by
// size range where one line does not fit).
//   mpiexec -n 2 partrain-calibrate --output machine.toml
#include <sched.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <KokkosBlas3_gemm.hpp>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include "harness.hpp"
#include "partrain/collectives/wait.hpp"
#include "partrain/core/cli.hpp"
#include "partrain/core/error.hpp"
#include "partrain/core/log.hpp"
#include "partrain/core/runtime.hpp"
#include "partrain/core/timer.hpp"
#include "partrain/io/h5.hpp"
#include "partrain/io/provenance.hpp"
#include "partrain/kernels/activation.hpp"
#include "partrain/kernels/attention.hpp"
#include "partrain/kernels/block_attention.hpp"
#include "partrain/kernels/elementwise.hpp"
#include "partrain/kernels/gemm.hpp"
#include "partrain/kernels/lstm.hpp"
#include "partrain/kernels/optimizer.hpp"
#include "partrain/perf/profile.hpp"

using namespace partrain;

namespace {

/// The median over ranks of a per-rank figure.
double median_over_ranks(MPI_Comm comm, double v) {
  int n = 0;
  MPI_Comm_size(comm, &n);
  std::vector<double> all(static_cast<std::size_t>(n), 0.0);
  MPI_Request req;
  PARTRAIN_MPI_CHECK(MPI_Iallgather(&v, 1, MPI_DOUBLE, all.data(), 1, MPI_DOUBLE, comm, &req));
  coll::wait(req);
  std::sort(all.begin(), all.end());
  return all[all.size() / 2];
}

/// The best FLOP/s over `seconds` of repeated calls of `pass` (each `flops` FLOPs, `reps` calls per timed batch, fenced)
/// after a warm-up call and a barrier, the median over the ranks of `comm`.
template <class F>
double best_rate(MPI_Comm comm, double seconds, double flops, int reps, F&& pass) {
  pass();  // warm-up
  coll::barrier(comm);
  double best = 0;
  const double until = wall_time_s() + seconds;
  while (wall_time_s() < until) {
    Kokkos::fence();
    const double t0 = wall_time_s();
    for (int r = 0; r < reps; ++r) pass();
    Kokkos::fence();
    best = std::max(best, reps * flops / (wall_time_s() - t0));
  }
  return median_over_ranks(comm, best);
}

/// gemm FLOP/s of an s×s×s product in T (fp32, or bf16: the 16-bit gemm mixed precision runs, fp32 accumulation)
/// on every rank at once (the best of several timed batches).
template <class T = float>
double gemm_rate(MPI_Comm comm, int s, double seconds) {
  View2<T> A("calibrate.A", s, s), B("calibrate.B", s, s), C("calibrate.C", s, s);
  Kokkos::deep_copy(A, T(0.5f));
  Kokkos::deep_copy(B, T(0.25f));
  return best_rate(comm, seconds, kernels::gemm_flops(s, s, s), std::max(1, int(2e8 / (2.0 * s * s * s))),
                   [&] { kernels::gemm<T>('N', 'N', 1.0f, A, B, 0.0f, C); });
}

/// The GPT's causal attention kernel (kernels/attention.hpp), forward then backward, on one sequence of T = 512 tokens
/// with 4 heads of d = 64: 12·T²·C FLOPs a pass (its products have one side d, its softmax is T × T); the median over
/// ranks of each rank's best rate. The performance model prices a block's attention with it (docs/model.md).
double attention_rate(MPI_Comm comm, double seconds) {
  const std::int64_t T = 512, H = 4, d = 64, C = H * d;
  View2<float> qkv("calibrate.qkv", T, 3 * C), out("calibrate.out", T, C), dqkv("calibrate.dqkv", T, 3 * C);
  Kokkos::deep_copy(qkv, 0.01f);
  Kokkos::deep_copy(out, 0.02f);
  kernels::AttentionState<float> st("calibrate.attention", 1, T, H, d);
  auto pass = [&] {
    kernels::attention_forward(kernels::as_sequences(qkv, 1, T), kernels::as_sequences(out, 1, T), H, st);
    kernels::attention_backward(kernels::as_sequences(out, 1, T), kernels::as_sequences(dqkv, 1, T), H, st);
  };
  return best_rate(comm, seconds, 12.0 * double(T) * double(T) * double(C), 1, pass);
}

/// Ring attention's block kernels (kernels/block_attention.hpp) on one unmasked pair of c = 256 queries and keys of
/// d = 64: the online softmax's begin, step and finish, then the backward's delta and block step (which recomputes the
/// scores), counted as 12·c²·d FLOPs like the dense kernel's; the median over ranks of each rank's best rate.
double block_attention_rate(MPI_Comm comm, double seconds) {
  const std::int64_t c = 256, d = 64;
  View2<float> Q("calibrate.q", c, d), K("calibrate.k", c, d), V("calibrate.v", c, d), dO("calibrate.do", c, d);
  View2<float> dQ("calibrate.dq", c, d), dK("calibrate.dk", c, d), dV("calibrate.dv", c, d), s("calibrate.s", c, c),
      dp("calibrate.dp", c, c);
  View1<float> lse("calibrate.lse", c), delta("calibrate.delta", c);
  for (auto* x : {&Q, &K, &V, &dO}) Kokkos::deep_copy(*x, 0.01f);
  kernels::OnlineSoftmax<float> os("calibrate.os", c, d);
  auto pass = [&] {
    kernels::block_attention_begin(os);
    kernels::block_attention_step(Q, K, V, c, 0, os, s);  // queries after every key: a full block
    kernels::block_attention_finish(os, lse);
    kernels::block_attention_delta(dO, os.o, delta);
    kernels::block_attention_backward(Q, K, V, dO, lse, delta, c, 0, dQ, dK, dV, s, dp);
  };
  return best_rate(comm, seconds, 12.0 * double(c) * double(c) * double(d), 8, pass);
}

/// The thin products an LSTM step issues: the gates' product (b × 4w × w, N·T), the input gradient's (b × w × 4w,
/// N·N) and the weight gradient's (4w × w × b, T·N), run in turn, at batches of 4 and 32 rows and widths of 64, 128
/// and 256 (the suite's LSTM widths). Their time is a part proportional to the FLOPs and a part that is not — the
/// BLAS packs the 4w × w weight (or reads and writes its gradient) on every call, whatever the batch — so the six
/// give both, by least squares on relative error: the FLOP rate (`rate`) and the seconds per byte of weight per call
/// (`s_per_B`). Each time is the median over ranks of each rank's best.
struct ThinFit {
  double rate = 0, s_per_B = 0;
};
ThinFit thin_gemm_fit(MPI_Comm comm, double seconds) {
  auto trio_seconds = [&](int b, int w) {
    const int g = 4 * w;
    View2<float> x("calibrate.x", b, w), W("calibrate.W", g, w), gates("calibrate.gates", b, g),
        dx("calibrate.dx", b, w), dW("calibrate.dW", g, w);
    Kokkos::deep_copy(x, 0.5f);
    Kokkos::deep_copy(W, 0.25f);
    Kokkos::deep_copy(gates, 0.125f);
    auto trio = [&] {
      kernels::gemm('N', 'T', 1.0f, x, W, 0.0f, gates);
      kernels::gemm('N', 'N', 1.0f, gates, W, 0.0f, dx);
      kernels::gemm('T', 'N', 1.0f, gates, x, 1.0f, dW);
    };
    trio();  // warm-up
    coll::barrier(comm);
    double best = 1e30;
    const double until = wall_time_s() + seconds;
    while (wall_time_s() < until) {
      const int reps = std::max(1, int(2e8 / (3 * kernels::gemm_flops(b, g, w))));
      Kokkos::fence();
      const double t0 = wall_time_s();
      for (int r = 0; r < reps; ++r) trio();
      Kokkos::fence();
      best = std::min(best, (wall_time_s() - t0) / reps);
    }
    return median_over_ranks(comm, best);
  };
  // t = F·x + W·y, weighted by 1/t: the normal equations of the 2 × 2 system
  double sff = 0, sfw = 0, sww = 0, sft = 0, swt = 0, best_rate = 0;
  for (int w : {64, 128, 256})
    for (int b : {4, 32}) {
      const double t = trio_seconds(b, w), F = 3 * kernels::gemm_flops(b, 4 * w, w) / t;
      const double W = 3.0 * 4 * w * w * sizeof(float) / t;
      sff += F * F;
      sfw += F * W;
      sww += W * W;
      sft += F;
      swt += W;
      best_rate = std::max(best_rate, F);
    }
  ThinFit fit;
  const double det = sff * sww - sfw * sfw;
  const double x = det > 0 ? (sft * sww - swt * sfw) / det : 0, y = det > 0 ? (sff * swt - sfw * sft) / det : 0;
  if (x > 0 && y >= 0) {
    fit.rate = 1 / x;
    fit.s_per_B = y;
  } else {  // noise beat the split: the FLOPs alone (x from sff·x = sft)
    fit.rate = sft > 0 ? sff / sft : best_rate;
  }
  return fit;
}

/// b += a over 16 MiB per rank, every rank at once: bytes of a per second (the best of several passes).
double reduce_rate(MPI_Comm comm) {
  const std::size_t n = (16u << 20) / sizeof(float);
  std::vector<float> a(n, 1.0f), b(n, 2.0f);
  coll::barrier(comm);
  double best = 0;
  for (int rep = 0; rep < 10; ++rep) {
    const double t0 = wall_time_s();
    float* __restrict pb = b.data();
    const float* __restrict pa = a.data();
    for (std::size_t i = 0; i < n; ++i) pb[i] += pa[i];
    best = std::max(best, double(n * sizeof(float)) / (wall_time_s() - t0));
  }
  volatile float sink = b[n / 2];
  (void)sink;
  return median_over_ranks(comm, best);
}

/// Elements (parameters) per second of a kernel run over n elements, every rank at once (the best of several).
template <class F>
double kernel_rate(MPI_Comm comm, std::int64_t n, F&& body) {
  body();  // warm-up
  coll::barrier(comm);
  double best = 0;
  for (int rep = 0; rep < 8; ++rep) {
    Kokkos::fence();
    const double t0 = wall_time_s();
    body();
    Kokkos::fence();
    best = std::max(best, double(n) / (wall_time_s() - t0));
  }
  return median_over_ranks(comm, best);
}

/// Hidden units per second of an LSTM cell's pointwise work — the NMT's own kernels (kernels/lstm.hpp): the forward's
/// biases, three sigmoids, two tanh and cell update per unit; the backward's tanh, the gates' derivatives and the
/// biases' gradients — forward alone and forward + backward. A batch of 16 rows of 256 units, as the time steps issue
/// them, many times over.
struct LstmRates {
  double forward = 0, both = 0;
};
LstmRates lstm_pointwise_rates(MPI_Comm comm) {
  const std::int64_t B = 16, H = 256, reps = 256;
  View2<float> g("calibrate.g", B, 4 * H), c("calibrate.c", B, H), cn("calibrate.cn", B, H), h("calibrate.h", B, H),
      dh("calibrate.dh", B, H), dc("calibrate.dc", B, H), dg("calibrate.dg", B, 4 * H), dcp("calibrate.dcp", B, H);
  View1<float> b1("calibrate.b1", 4 * H), b2("calibrate.b2", 4 * H), db1("calibrate.db1", 4 * H), db2("calibrate.db2", 4 * H);
  Kokkos::deep_copy(g, 0.3f);
  Kokkos::deep_copy(c, 0.2f);
  Kokkos::deep_copy(dh, 0.1f);
  Kokkos::deep_copy(dc, 0.1f);
  auto forward = [&] {
    Kokkos::deep_copy(g, 0.3f);  // the gates are overwritten by their activations: restore the products
    kernels::lstm_gates_forward(g, b1, b2, c, cn, h);
  };
  // the restore's own cost, taken out of both
  const double restore = kernel_rate(comm, B * H * reps, [&] {
    for (std::int64_t r = 0; r < reps; ++r) Kokkos::deep_copy(g, 0.3f);
  });
  const double fwd = kernel_rate(comm, B * H * reps, [&] {
    for (std::int64_t r = 0; r < reps; ++r) forward();
  });
  const double both = kernel_rate(comm, B * H * reps, [&] {
    for (std::int64_t r = 0; r < reps; ++r) {
      forward();
      kernels::lstm_gates_backward(dh, dc, c, g, cn, dg, dcp, db1, db2);
    }
  });
  auto minus_restore = [&](double rate) { return 1 / std::max(1e-15, 1 / rate - 1 / restore); };
  return {minus_restore(fwd), minus_restore(both)};
}

}  // namespace

int main(int argc, char** argv) {
  return run_app("partrain-calibrate", argc, argv, [&](Runtime& rt) {
    CLI::App app{"partrain-calibrate: measure this machine into a profile for the performance model", "partrain-calibrate"};
    std::string output, name;
    bool overwrite = false, quick = false;
    app.add_option("-o,--output", output, "the profile to write (TOML)")->required();
    app.add_option("--name", name, "the profile's name (default: the host name)");
    app.add_flag("--overwrite", overwrite, "replace an existing profile");
    app.add_flag("--quick", quick, "fewer sizes and repetitions (a test's calibration, not a machine's)");
    int pretend = 0;
    app.add_option("--pretend-node-size", pretend,
                   "treat consecutive groups of this many ranks as nodes: fit the intra-node algorithms on each group "
                   "and the inter-node ones across the groups (the hierarchical case, on one machine)");
    if (int rc = parse_command_line(app, argc, argv); rc >= 0) return rc;
    io::check_output_path("--output", output, overwrite);
    if (rt.size() < 2) input_error("ranks", std::to_string(rt.size()), "partrain-calibrate needs at least 2 ranks (the collectives)");
    if (pretend < 0 || pretend == 1 || (pretend > 0 && (rt.size() % pretend != 0 || rt.size() / pretend < 2)))
      input_error("--pretend-node-size", std::to_string(pretend),
                  "must be 0 or divide the ranks (" + std::to_string(rt.size()) + ") into at least 2 nodes of at least 2 ranks");
    rt.check_inputs();
    rt.inputs_done();
    const auto prov = io::collect_provenance(MPI_COMM_WORLD, argc, argv);
    coll::MpiCommunicator comm(MPI_COMM_WORLD, pretend);
    perf::MachineProfile p;
    p.name = name.empty() ? prov.hostnames : name;
    p.source = "partrain-calibrate " + prov.git_commit + ", " + std::to_string(rt.size()) + " ranks on " +
               prov.hostnames + ", " + prov.created_utc;
    // Nodes: pretend groups, or MPI's shared-memory domains (real nodes, or those of scripts/vcluster)
    int local = 1;
    {
      MPI_Comm node;
      PARTRAIN_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
      PARTRAIN_MPI_CHECK(MPI_Comm_size(node, &local));
      PARTRAIN_MPI_CHECK(MPI_Comm_free(&node));
      int lo = local, hi = local;
      coll::allreduce(&local, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
      coll::allreduce(&local, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
      if (lo != hi) local = 0;  // nodes of different sizes: no ranks-per-node figure
    }
    p.ranks_per_node = pretend > 0 ? pretend : comm.single_node() ? rt.size() : local;
    {
      cpu_set_t set;
      CPU_ZERO(&set);
      if (sched_getaffinity(0, sizeof set, &set) == 0) p.cores_per_node = CPU_COUNT(&set);
      // nodes that are namespaces or containers of one machine (scripts/vcluster) share its cores: a node's share
      const int nodes_here = local > 0 ? std::max(1, coll::machine_ranks(MPI_COMM_WORLD) / local) : 1;
      if (nodes_here > 1 && !comm.single_node()) {
        log0("# note: " + std::to_string(nodes_here) + " nodes share this machine's " + std::to_string(p.cores_per_node) +
             " cores (virtual nodes): cores_per_node = " + std::to_string(std::max(1, p.cores_per_node / nodes_here)));
        p.cores_per_node = std::max(1, p.cores_per_node / nodes_here);
      }
      if (comm.single_node() && p.cores_per_node < rt.size())
        log0("# note: " + std::to_string(rt.size()) + " ranks on " + std::to_string(p.cores_per_node) +
             " cores: the rates are those of shared cores; calibrate with at most one rank per core");
    }
    const double gemm_s = quick ? 0.05 : 0.4;
    p.gemm_tiny = gemm_rate(MPI_COMM_WORLD, 64, gemm_s);
    p.gemm_small = gemm_rate(MPI_COMM_WORLD, 128, gemm_s);
    p.gemm_medium = gemm_rate(MPI_COMM_WORLD, 512, gemm_s);
    p.gemm_large = gemm_rate(MPI_COMM_WORLD, 1024, gemm_s);
    // mixed precision's rates, measured (train.precision = bf16 runs this kernel; fp16 on a CPU without an fp16 gemm
    // runs fp32 sgemm on converted copies, slower than these: docs/precision.md)
    p.gemm_half_small = gemm_rate<bf16>(MPI_COMM_WORLD, 128, gemm_s);
    p.gemm_half_medium = gemm_rate<bf16>(MPI_COMM_WORLD, 512, gemm_s);
    p.gemm_half_large = gemm_rate<bf16>(MPI_COMM_WORLD, 1024, gemm_s);
    const auto thin = thin_gemm_fit(MPI_COMM_WORLD, gemm_s);
    p.gemm_thin = thin.rate;
    p.thin_s_per_B = thin.s_per_B;
    p.memory_Bps = 2 * coll::bench::measure_copy_bandwidth(comm);  // copied bytes are read once and written once
    p.reduce_Bps = reduce_rate(MPI_COMM_WORLD);
    {
      const std::int64_t n = 4 << 20;  // 16 MiB of fp32 per tensor
      View1<float> x("calibrate.x", n), y("calibrate.y", n), m("calibrate.m", n), v("calibrate.v", n);
      Kokkos::deep_copy(x, 0.5f);
      Kokkos::deep_copy(y, 0.01f);
      p.pointwise_eps = kernel_rate(MPI_COMM_WORLD, n, [&] { kernels::gelu_forward(x, y); });
      {
        View1<bf16> hx("calibrate.hx", n), hy("calibrate.hy", n);
        Kokkos::deep_copy(hx, bf16(0.5f));
        p.pointwise_half_eps = kernel_rate(MPI_COMM_WORLD, n, [&] { kernels::gelu_forward(hx, hy); });
      }
      std::int64_t step = 0;
      p.adam_pps = kernel_rate(MPI_COMM_WORLD, n, [&] { kernels::adam_step(x, y, m, v, kernels::AdamParams{}, ++step); });
      p.sgd_pps = kernel_rate(MPI_COMM_WORLD, n, [&] { kernels::sgd_step(x, y, View1<float>(), kernels::SgdParams{}); });
      p.adagrad_pps = kernel_rate(MPI_COMM_WORLD, n, [&] { kernels::adagrad_step(x, y, v, kernels::AdagradParams{}); });
      const auto lstm = lstm_pointwise_rates(MPI_COMM_WORLD);
      p.lstm_ups = lstm.both;
      p.lstm_forward_ups = lstm.forward;
    }
    p.attention_fps = attention_rate(MPI_COMM_WORLD, gemm_s);
    p.block_attention_fps = block_attention_rate(MPI_COMM_WORLD, gemm_s);
    char line[320];
    std::snprintf(line, sizeof line,
                  "# gemm fp32 %.1f / %.1f / %.1f / %.1f GFLOP/s (64^3 / 128^3 / 512^3 / 1024^3), thin %.1f + %.2f GB/s of weight "
                  "(an LSTM step's), "
                  "memory %.2f GB/s, reduce %.2f GB/s, "
                  "GELU %.2f G/s, AdamW %.2f G/s, SGD %.2f G/s, AdaGrad %.2f G/s, LSTM cell %.3f G units/s (forward alone %.3f)",
                  p.gemm_tiny / 1e9, p.gemm_small / 1e9, p.gemm_medium / 1e9, p.gemm_large / 1e9, p.gemm_thin / 1e9,
                  p.thin_s_per_B > 0 ? 1e-9 / p.thin_s_per_B : 0.0,
                  p.memory_Bps / 1e9, p.reduce_Bps / 1e9,
                  p.pointwise_eps / 1e9, p.adam_pps / 1e9, p.sgd_pps / 1e9, p.adagrad_pps / 1e9, p.lstm_ups / 1e9, p.lstm_forward_ups / 1e9);
    log0(line);
    std::snprintf(line, sizeof line, "# bf16: GELU %.2f G/s, gemm %.1f / %.1f / %.1f GFLOP/s (128^3 / 512^3 / 1024^3), ",
                  p.pointwise_half_eps / 1e9, p.gemm_half_small / 1e9, p.gemm_half_medium / 1e9, p.gemm_half_large / 1e9);
    log0(line + kernels::half_gemm_kernel("bf16"));
    std::snprintf(line, sizeof line, "# causal attention (T = 512, d = 64) forward + backward %.1f GFLOP/s, ring attention's blocks %.1f",
                  p.attention_fps / 1e9, p.block_attention_fps / 1e9);
    log0(line);
    const double gamma = 1 / p.reduce_Bps;
    // α, β of every algorithm and operation on `c` (the whole job, a node's ranks or one rank per node), as `scope`
    auto fit_all = [&](coll::MpiCommunicator& c, const std::string& scope) {
    for (const char* op : {"allreduce", "reduce_scatter", "allgather", "broadcast", "alltoall"}) {
      coll::bench::Options o;
      o.op = op;
      o.algo = "all";
      o.min_bytes = "4K";
      o.max_bytes = quick ? "1M" : "16M";
      o.step_factor = quick ? 4 : 2;  // enough sizes on each side of a protocol switch for a fit by range
      o.iters = quick ? 3 : 10;
      o.warmup = quick ? 1 : 3;
      o.check = false;
      auto plan = coll::bench::make_plan(o);
      plan.quiet = true;
      plan.algos.erase(std::remove_if(plan.algos.begin(), plan.algos.end(),
                                      [&](coll::Algo a) {
                                        return a == coll::Algo::Hier || (a == coll::Algo::Shm && (!c.single_node() || scope == "inter"));
                                      }),
                       plan.algos.end());
      const auto rows = coll::bench::run(c, plan);
      for (const coll::Algo a : plan.algos) {
        std::vector<std::pair<double, double>> pts;
        for (const auto& r : rows)
          if (r.algo == a) pts.push_back({double(r.bytes), r.t_max});
        std::vector<perf::RangeFit> fits;
        try {
          fits = perf::fit_by_size_range(coll::name(a), op, c.size(), pts, gamma);
        } catch (const RuntimeError&) {
          continue;  // no closed form for this algorithm and operation
        }
        for (const auto& r : fits) {
          perf::CollectiveFit f;
          f.algo = coll::name(a);
          f.op = op;
          f.scope = scope;
          f.ranks = c.size();
          f.min_bytes = r.min_bytes;
          f.max_bytes = r.max_bytes;
          f.link = r.link;
          f.fit_error = r.fit_error;
          p.collectives.push_back(f);
          const std::string range = fits.size() == 1 ? std::string("all sizes")
                                    : r.max_bytes > 0 ? "< " + std::to_string(std::int64_t(r.max_bytes) / 1024) + " KiB"
                                                      : ">= " + std::to_string(std::int64_t(r.min_bytes) / 1024) + " KiB";
          std::snprintf(line, sizeof line,
                        "# %-5s %-14s %-6s alpha %7.2f us  beta^-1 %6.2f GB/s  (%s; median fit error %4.1f%%)",
                        scope.c_str(), op, f.algo.c_str(), f.link.alpha_s * 1e6,
                        f.link.beta_s_per_B > 0 ? 1e-9 / f.link.beta_s_per_B : 0.0, range.c_str(), 100 * f.fit_error);
          log0(line);
        }
      }
    }
    };
    if (comm.node_comm()) {  // several nodes (real or pretend) of several ranks each: every node fits its intra-node
      fit_all(*comm.node_comm(), "intra");  // algorithms at once, then one rank per node across
      fit_all(*comm.cross_comm(), "inter");
    } else {
      fit_all(comm, comm.single_node() ? "intra" : "inter");
    }
    if (rt.rank() == 0) {
      const std::string tmp = output + ".tmp-" + std::to_string(getpid());
      {
        std::ofstream out(tmp);
        out << perf::to_toml(p);
        if (!out) throw RuntimeError("cannot write " + tmp);
      }
      if (std::rename(tmp.c_str(), output.c_str()) != 0) throw RuntimeError("cannot rename " + tmp + " to " + output);
      log0("# profile written to " + output);
    }
    return 0;
  });
}
