// The performance model's pieces against their closed forms (docs/model.md):
//   - every algorithm's α-β-γ terms are Thakur, Rabenseifner & Gropp's (2005) for p = 2…64, powers of two and not;
//   - the fit recovers α and β from exact synthetic times, and from times with ±5% noise within 10%;
//   - a profile survives to_toml → read_profile; a profile with a rate missing is an error naming it;
//   - the step model: compute scales with the batch, tensor parallelism divides it and adds 4·L allreduces of the
//     activations, the pipeline's bubble is the schedule's formula, ZeRO-3 gathers twice what stage 1 gathers;
//   - nccl-tests' busbw convention: with a profile of β⁻¹ = B, a large ring allreduce shows busbw → B (the figure
//     nccl-tests reports for 8×H100 NVLink, ~370 GB/s, is what inputs/machines/h100_nvlink_ndr.toml encodes).
#include <gtest/gtest.h>

#include "partrain/parallel/ps/hybrid_trainer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include "partrain/core/config.hpp"
#include "partrain/core/error.hpp"
#include "partrain/models/gpt.hpp"
#include "partrain/models/nmt.hpp"
#include "partrain/parallel/nmt/placement.hpp"
#include "partrain/parallel/nmt/wavefront.hpp"
#include "partrain/perf/collective_model.hpp"
#include "partrain/perf/memory_model.hpp"
#include "partrain/perf/profile.hpp"
#include "partrain/perf/step_model.hpp"

using namespace partrain;
using namespace partrain::perf;

namespace {

MachineProfile toy_profile() {
  MachineProfile p;
  p.name = "toy";
  p.gemm_small = p.gemm_medium = p.gemm_large = 1e11;
  p.memory_Bps = 1e10;
  p.reduce_Bps = 1e10;
  for (const char* op : {"allreduce", "reduce_scatter", "allgather", "broadcast"}) {
    CollectiveFit f;
    f.algo = "ring";
    f.op = op;
    f.scope = "intra";
    f.link = {2e-6, 1e-10, 1e-10};
    p.collectives.push_back(f);
  }
  return p;
}

/// toy_profile() with a network between nodes ten times slower than the node (the same fits, scope "inter").
MachineProfile two_level_profile() {
  MachineProfile p = toy_profile();
  for (auto c : std::vector<CollectiveFit>(p.collectives)) {
    c.scope = "inter";
    c.link.beta_s_per_B *= 10;
    p.collectives.push_back(c);
  }
  return p;
}

models::ModelSpec gpt() {
  models::ModelSpec m;
  m.kind = "gpt";
  m.gpt.vocab = 512;
  m.gpt.seq_len = 128;
  m.gpt.layers = 4;
  m.gpt.channels = 256;
  m.gpt.heads = 4;
  return m;
}

}  // namespace

TEST(PerfModel, ClosedForms) {
  for (int p = 2; p <= 64; ++p) {
    const double n = 1 << 20, f = (p - 1.0) / p, lg = std::ceil(std::log2(double(p)));
    const auto ring = cost_terms("ring", "allreduce", p, n);
    EXPECT_DOUBLE_EQ(ring.a, 2.0 * (p - 1));  // 2(p−1)α + 2((p−1)/p)nβ + ((p−1)/p)nγ
    EXPECT_DOUBLE_EQ(ring.b, 2 * f);
    EXPECT_DOUBLE_EQ(ring.c, f);
    const auto rs = cost_terms("ring", "reduce_scatter", p, n);
    EXPECT_DOUBLE_EQ(rs.a, p - 1.0);
    EXPECT_DOUBLE_EQ(rs.b, f);
    EXPECT_DOUBLE_EQ(rs.c, f);
    const auto ag = cost_terms("ring", "allgather", p, n);
    EXPECT_DOUBLE_EQ(ag.a, p - 1.0);
    EXPECT_DOUBLE_EQ(ag.b, f);
    EXPECT_DOUBLE_EQ(ag.c, 0.0);
    const auto tree = cost_terms("tree", "allreduce", p, n);  // binomial reduce + broadcast
    EXPECT_DOUBLE_EQ(tree.a, 2 * lg);
    EXPECT_DOUBLE_EQ(tree.b, 2 * lg);
    EXPECT_DOUBLE_EQ(tree.c, lg);
    const auto rd = cost_terms("recdbl", "allreduce", p, n);  // Rabenseifner, 2 log p α + 2 f nβ + f nγ
    const bool pow2 = (p & (p - 1)) == 0;
    const int pv = pow2 ? p : 1 << int(std::floor(std::log2(double(p))));
    const double fv = (pv - 1.0) / pv;
    EXPECT_DOUBLE_EQ(rd.a, 2 * std::log2(double(pv)) + (pow2 ? 0 : 2)) << p;
    EXPECT_DOUBLE_EQ(rd.b, 2 * fv + (pow2 ? 0 : 2)) << p;
    EXPECT_DOUBLE_EQ(rd.c, fv + (pow2 ? 0 : 1)) << p;
  }
  EXPECT_DOUBLE_EQ(cost_terms("ring", "allreduce", 1, 1e6).a, 0.0);
  EXPECT_THROW(cost_terms("tree", "allgather", 4, 1e6), RuntimeError);
  EXPECT_THROW(cost_terms("nosuch", "allreduce", 4, 1e6), RuntimeError);
}

TEST(PerfModel, FitRecoversAlphaBeta) {
  const LinkParams truth{3e-6, 1.0 / 12e9, 1.0 / 20e9};
  for (const char* algo : {"ring", "recdbl", "tree"}) {
    std::vector<std::pair<double, double>> pts, noisy;
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> jitter(-0.05, 0.05);
    for (double n = 4096; n <= 16 << 20; n *= 2) {
      const double t = collective_time(algo, "allreduce", 4, n, truth);
      pts.push_back({n, t});
      noisy.push_back({n, t * (1 + jitter(rng))});
    }
    const auto fit = fit_alpha_beta(algo, "allreduce", 4, pts, truth.gamma_s_per_B);
    EXPECT_NEAR(fit.alpha_s / truth.alpha_s, 1.0, 1e-9) << algo;
    EXPECT_NEAR(fit.beta_s_per_B / truth.beta_s_per_B, 1.0, 1e-9) << algo;
    EXPECT_LT(median_relative_error(algo, "allreduce", 4, pts, fit), 1e-9);
    const auto nf = fit_alpha_beta(algo, "allreduce", 4, noisy, truth.gamma_s_per_B);
    EXPECT_NEAR(nf.alpha_s / truth.alpha_s, 1.0, 0.1) << algo;
    EXPECT_NEAR(nf.beta_s_per_B / truth.beta_s_per_B, 1.0, 0.1) << algo;
  }
}

TEST(PerfModel, FitsBySizeRange) {
  // below 256 KiB one regime (an eager protocol, in cache), from 256 KiB another: the fit splits there and recovers
  // both; a single regime stays one fit; a profile answers each size from its range
  const LinkParams small{5e-6, 1.0 / 10e9, 1.0 / 1e10}, large{20e-6, 1.0 / 4e9, 1.0 / 1e10};  // γ: the toy profile's
  std::vector<std::pair<double, double>> pts, one;
  for (double n = 4096; n <= 16 << 20; n *= 2) {
    pts.push_back({n, collective_time("ring", "allreduce", 4, n, n < 262144 ? small : large)});
    one.push_back({n, collective_time("ring", "allreduce", 4, n, small)});
  }
  const auto fits = fit_by_size_range("ring", "allreduce", 4, pts, small.gamma_s_per_B);
  ASSERT_EQ(fits.size(), 2u);
  EXPECT_DOUBLE_EQ(fits[0].max_bytes, 262144);
  EXPECT_DOUBLE_EQ(fits[1].min_bytes, 262144);
  EXPECT_NEAR(fits[0].link.alpha_s / small.alpha_s, 1.0, 1e-6);
  EXPECT_NEAR(fits[0].link.beta_s_per_B / small.beta_s_per_B, 1.0, 1e-6);
  EXPECT_NEAR(fits[1].link.alpha_s / large.alpha_s, 1.0, 1e-6);
  EXPECT_NEAR(fits[1].link.beta_s_per_B / large.beta_s_per_B, 1.0, 1e-6);
  EXPECT_EQ(fit_by_size_range("ring", "allreduce", 4, one, small.gamma_s_per_B).size(), 1u);

  MachineProfile p = toy_profile();
  p.collectives.clear();
  for (const auto& r : fits) {
    CollectiveFit f;
    f.algo = "ring";
    f.op = "allreduce";
    f.scope = "intra";
    f.min_bytes = r.min_bytes;
    f.max_bytes = r.max_bytes;
    f.link = r.link;
    p.collectives.push_back(f);
  }
  const std::string path = testing::TempDir() + "/partrain_ranges.toml";
  std::ofstream(path) << to_toml(p);
  const auto q = read_profile("--profile", path);
  ASSERT_EQ(q.collectives.size(), 2u);
  EXPECT_EQ(q.find("ring", "allreduce", "intra", 65536), &q.collectives[0]);
  EXPECT_EQ(q.find("ring", "allreduce", "intra", 262144), &q.collectives[1]);
  EXPECT_EQ(q.find("ring", "allreduce", "intra", 1e12), &q.collectives[1]);  // beyond every range: the nearest
  EXPECT_EQ(q.find("ring", "allreduce", "intra", 1), &q.collectives[0]);
  std::string note;
  for (double n : {16384.0, 4194304.0}) {
    const double t = collective_time("ring", "allreduce", 4, n, n < 262144 ? small : large);
    EXPECT_NEAR(collective_seconds(q, "ring", "allreduce", 4, n, false, &note), t, 1e-5 * t) << n;
  }
  std::ofstream(path) << "name = \"r\"\n[compute]\ngemm_small = 1e9\ngemm_medium = 1e9\ngemm_large = 1e9\n"
                         "memory_Bps = 1e9\nreduce_Bps = 1e9\n[[collective]]\nalgo = \"ring\"\nop = \"allreduce\"\n"
                         "alpha_s = 1e-6\nbeta_s_per_B = 1e-10\nmin_bytes = 4096\nmax_bytes = 1024\n";
  try {
    read_profile("--profile", path);
    FAIL() << "a range with max_bytes below min_bytes was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("max_bytes must be above min_bytes"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
}

TEST(PerfModel, BusbwConvention) {
  // nccl-tests: busbw = size / time · 2(p−1)/p for allreduce; with α → 0 and γ → 0 a ring shows busbw = 1/β
  const LinkParams l{1e-6, 1.0 / 370e9, 0};
  const double n = 8.0 * (1 << 30), t = collective_time("ring", "allreduce", 8, n, l);
  EXPECT_NEAR(n / t * 2 * 7 / 8 / 370e9, 1.0, 1e-3);  // 14 α of 41 ms
}

TEST(PerfModel, ProfileRoundTrip) {
  auto p = toy_profile();
  const std::string path = testing::TempDir() + "/partrain_profile.toml";
  p.gemm_half_small = 1e12;
  p.gemm_half_medium = 2e12;
  p.gemm_half_large = 3e12;
  p.attention_fps = 4e10;
  p.block_attention_fps = 3e10;
  p.adagrad_pps = 5e8;
  {
    std::ofstream out(path);
    out << to_toml(p);
  }
  const auto q = read_profile("--profile", path);
  EXPECT_EQ(q.name, "toy");
  EXPECT_DOUBLE_EQ(q.attention_fps, 4e10);
  EXPECT_DOUBLE_EQ(q.block_attention_fps, 3e10);
  EXPECT_DOUBLE_EQ(q.adagrad_pps, 5e8);
  EXPECT_DOUBLE_EQ(q.gemm_large, 1e11);
  EXPECT_DOUBLE_EQ(q.gemm_rate(4096, 4096, 4096, true), 3e12);
  EXPECT_DOUBLE_EQ(q.gemm_rate(500, 500, 500, true), 2e12);
  EXPECT_DOUBLE_EQ(q.gemm_rate(4096, 4096, 4096), 1e11);
  ASSERT_EQ(q.collectives.size(), 4u);
  ASSERT_NE(q.find("ring", "allgather", "intra"), nullptr);
  EXPECT_DOUBLE_EQ(q.find("ring", "allgather", "intra")->link.alpha_s, 2e-6);
  {
    std::ofstream out(path);
    out << "name = \"broken\"\n[compute]\ngemm_small = 1e9\n";
  }
  try {
    read_profile("--profile", path);
    FAIL() << "a profile without gemm_medium was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("gemm_medium is missing"), std::string::npos) << e.what();
  }
  {
    std::ofstream out(path);
    out << "name = \"half\"\n[compute]\ngemm_small = 1e9\ngemm_medium = 1e9\ngemm_large = 1e9\nmemory_Bps = 1e9\n"
           "reduce_Bps = 1e9\ngemm_half_large = 1e12\n";
  }
  try {
    read_profile("--profile", path);
    FAIL() << "a profile with one half rate was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("go together"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_profile("--profile", "/no/such.toml"), InputError);
  std::remove(path.c_str());
}

TEST(PerfModel, ThinGemmsAndTheNmtCompute) {
  // any dimension <= 32 is thin: the LSTM step's gates, input and weight gradients over a batch of 16
  auto p = toy_profile();
  p.gemm_thin = 2e10;
  EXPECT_DOUBLE_EQ(p.gemm_rate(16, 512, 128), 2e10);
  EXPECT_DOUBLE_EQ(p.gemm_rate(512, 128, 16), 2e10);
  EXPECT_DOUBLE_EQ(p.gemm_rate(33, 512, 128), 1e11);
  {  // the round trip keeps it
    const std::string path = testing::TempDir() + "/partrain_thin.toml";
    std::ofstream(path) << to_toml(p);
    p.lstm_ups = 3e8;
    p.lstm_forward_ups = 4e8;
    p.thin_s_per_B = 2e-11;
    std::ofstream(path) << to_toml(p);
    const auto q = read_profile("--profile", path);
    EXPECT_DOUBLE_EQ(q.gemm_thin, 2e10);
    EXPECT_DOUBLE_EQ(q.lstm_ups, 3e8);
    EXPECT_DOUBLE_EQ(q.lstm_forward_ups, 4e8);
    EXPECT_DOUBLE_EQ(q.thin_s_per_B, 2e-11);
    p.lstm_forward_ups = p.thin_s_per_B = 0;
    std::remove(path.c_str());
  }
  // the NMT: LSTM FLOPs at the thin rate plus their weights' fixed part, the generator at the large rate, the source
  // attention's multiply-adds at the pointwise rate, the cells at the LSTM rates (forward alone and both)
  models::ModelSpec ms;
  ms.kind = "nmt";
  ms.nmt.vocab = 512;
  ms.nmt.embed = ms.nmt.hidden = 128;
  ms.nmt.enc_layers = ms.nmt.dec_layers = 4;
  ms.nmt.max_len = 16;
  p.pointwise_eps = 1e9;
  p.thin_s_per_B = 1e-11;
  const double B = 16, S = 16, H = 128, E = 128, V = 512;
  const double generator = 2 * B * S * H * V, attention = 4 * B * S * S * H;
  const double total = models::Nmt<double>(ms.nmt).forward_flops(16);
  p.lstm_ups = 1e8;
  p.lstm_forward_ups = 1.5e8;
  const double units = B * S * H * 8, softmax = B * S * (V + S);
  const auto r = predict_compute(ms, 16, p);
  // the LSTM weights (models/nmt.hpp): the bidirectional layer's two [2H, E] + [2H, H/2], three encoder layers'
  // [4H, H] + [4H, H], the first decoder layer's [4H, E] + [4H, H], three more [4H, 2H] + [4H, H]; each streamed 3
  // times a time step, a third of it forward
  const double weights = 2 * (2 * H * E + 2 * H * H / 2) + 3 * (8 * H * H) + (4 * H * E + 4 * H * H) + 3 * (12 * H * H);
  const double fixed = 3 * S * weights * 4 * 1e-11;
  const double gemm = (total - generator - attention) / 2e10 + generator / 1e11 + fixed / 3;
  const double att = attention / 2 / 1e9, cell_f = units / 1.5e8, cell_b = units / 1e8 - cell_f;
  EXPECT_NEAR(r.forward_s, gemm + cell_f + softmax / 1e9 + att, 1e-12);
  EXPECT_NEAR(r.backward_s, 2 * gemm + cell_b + softmax / 1e9 + att, 1e-12);
  // without gemm_thin and lstm_ups: the side's class, 5 transcendentals per unit at the GELU rate
  p.gemm_thin = 0;
  p.lstm_ups = 0;
  EXPECT_LT(predict_compute(ms, 16, p).forward_s, r.forward_s);
}

TEST(PerfModel, NmtWavefrontInSeconds) {
  // the wavefront's schedule with FLOPs costs given explicitly is the FLOPs model itself; the step model runs it with
  // seconds from the profile, so the fill and drain's share of the step follows what each part costs: slower cells
  // (which the attention and the generator do not have) change it — with FLOPs costs it could not move
  models::NmtConfig c;
  c.vocab = 512;
  c.embed = c.hidden = 128;
  c.enc_layers = c.dec_layers = 4;
  c.max_len = 16;
  const parallel::nmt::Placement place(c, 2);
  const auto a = parallel::nmt::wavefront_model(c, place, 8, 4);
  const auto b = parallel::nmt::wavefront_model(c, place, 4, parallel::nmt::flop_costs(c, 8, 2));
  EXPECT_DOUBLE_EQ(a.makespan, b.makespan);
  EXPECT_EQ(a.busy, b.busy);

  MachineProfile p = toy_profile();
  p.gemm_thin = 2e10;
  p.pointwise_eps = 1e9;
  p.lstm_ups = 1e8;
  StepInputs in;
  in.strategy = "nmt";
  in.model.kind = "nmt";
  in.model.nmt = c;
  in.train.global_batch = 8;
  in.pp = 2;  // k
  in.dp = 1;
  auto share = [&] {
    const auto r = predict_step(in, p);
    return r.bubble_s / (r.forward_s + r.backward_s);
  };
  const double fast = share();
  p.lstm_ups = 1e7;
  const double slow = share();
  EXPECT_GT(fast, 0);
  EXPECT_GT(std::fabs(slow - fast), 0.01 * fast);
}

TEST(PerfModel, StepModelPieces) {
  const auto prof = toy_profile();
  StepInputs in;
  in.model = gpt();
  in.train.global_batch = 8;
  in.strategy = "serial";
  const auto one = predict_step(in, prof);
  EXPECT_GT(one.forward_s, 0);
  EXPECT_DOUBLE_EQ(one.backward_s, 2 * one.forward_s);  // one rate class: the backward is 2× everywhere
  EXPECT_DOUBLE_EQ(one.comm_pure_s, 0);
  in.train.global_batch = 16;
  EXPECT_NEAR(predict_step(in, prof).forward_s / one.forward_s, 2.0, 2e-3);  // linear in the batch (but per-step parts)

  in.train.global_batch = 8;
  in.strategy = "tp";
  in.tp = 2;
  in.dp = 1;
  const auto tp = predict_step(in, prof);
  EXPECT_NEAR(tp.forward_s, one.forward_s / 2, 1e-12);
  const double act = 8.0 * 128 * 256 * 4;  // b·T·C floats per allreduce
  EXPECT_NEAR(tp.comm_pure_s, 4 * 4 * collective_time("ring", "allreduce", 2, act, prof.collectives[0].link), 1e-12);

  in.strategy = "pp";
  in.tp = 1;
  in.pp = 2;
  in.microbatches = 8;
  in.schedule = "1f1b";
  const auto pp = predict_step(in, prof);
  const double busy = pp.forward_s + pp.backward_s;
  EXPECT_NEAR(pp.bubble_s / (busy + pp.bubble_s), 1.0 / 9.0, 1e-12);  // (p−1)/(m+p−1)

  in.strategy = "zero";
  in.pp = 1;
  in.dp = 2;
  in.bucket_bytes = 1 << 20;
  in.zero_stage = 1;
  const auto z1 = predict_step(in, prof);
  in.zero_stage = 3;
  const auto z3 = predict_step(in, prof);
  // stage 3 gathers the parameters once more: exactly one more allgather of every bucket
  models::Gpt<double> m(in.model.gpt);
  m.build(0, false, false);
  const double bytes = double(m.params().numel()) * 4, nb = std::ceil(bytes / (1 << 20));
  const double ag = nb * collective_time("ring", "allgather", 2, 1 << 20, prof.collectives[2].link);
  EXPECT_NEAR(z3.comm_pure_s - z1.comm_pure_s, ag, 1e-12);
  EXPECT_NEAR(z3.optimizer_s, z1.optimizer_s, 1e-15);
  in.zero_stage = 0;
  EXPECT_NEAR(predict_step(in, prof).optimizer_s, 2 * z1.optimizer_s, 1e-15);  // stage 1 shards the optimizer

  // the parameter server: bsp's servers sum the W workers' gradients (γ) and update once; asp updates per push
  in.strategy = "ps";
  in.servers = 1;
  in.workers = 2;
  in.ps_mode = "asp";
  const auto asp = predict_step(in, prof);
  in.ps_mode = "bsp";
  const auto bsp = predict_step(in, prof);
  EXPECT_NEAR(asp.optimizer_s, 2 * (bsp.optimizer_s - 2 * bytes / prof.reduce_Bps), 1e-12);
  EXPECT_NEAR(bsp.comm_pure_s, asp.comm_pure_s, 1e-15);
}

TEST(PerfModel, HybridParameterServer) {
  // ps.hybrid: the rows a worker pulls are the dataset's expected distinct ids per table; the bytes are the sparse
  // exchange's plus the dense allreduce's (hybrid_bytes); the pull and push go through the servers' links, W workers
  // each; a dense parameter server on the same model moves the whole tables instead and is priced far slower.
  const auto prof = toy_profile();
  StepInputs in;
  in.model.kind = "sparse_mlp";
  in.model.sparse.rows = 100000;
  in.train.global_batch = 128;
  in.train.optimizer.kind = "adagrad";
  in.strategy = "ps";
  in.servers = 1;
  in.workers = 2;
  in.dp = 2;
  in.ps_hybrid = true;
  in.bucket_bytes = 1 << 30;
  const auto h = predict_step(in, prof);
  const auto& c = in.model.sparse;
  const double rows = double(c.tables) * models::ClickDataset<double>::expected_distinct(c.rows, 64 * c.bag);
  EXPECT_NEAR(h.sparse_rows, rows, 1e-9 * rows);
  models::SparseMlp<double> m(c);
  m.build(0, false, false);
  const double psi = double(m.params().numel()), tables = double(c.table_numel());
  const auto b = parallel::ps::hybrid_bytes(rows, double(c.dim), psi - tables, tables, 1, 2, 4.0);
  EXPECT_NEAR(h.sparse_bytes, b.hybrid(), 1e-9 * b.hybrid());
  EXPECT_NEAR(b.dense_ps, 2 * psi * 4, 1e-6);
  EXPECT_NEAR(b.dp, 2 * 1.0 * psi * 4, 1e-6);  // 2(W-1)/W = 1 at W = 2, each way
  // the counts, then per worker its keys, its rows and their gradients through the server's link (one server), and
  // the dense gradients' allreduce (one bucket)
  auto one = [&](double x) { return collective_time("ring", "allgather", 2, 2 * x, prof.collectives[2].link); };
  const double ar = collective_time("ring", "allreduce", 2, (psi - tables) * 4, prof.collectives[0].link);
  EXPECT_NEAR(h.comm_pure_s, one(8) + 2 * (one(rows * 8) + 2 * one(rows * c.dim * 4)) + ar, 1e-12);
  in.ps_hybrid = false;
  const auto dense = predict_step(in, prof);
  EXPECT_GT(dense.comm_pure_s, 100 * h.comm_pure_s);
  EXPECT_GT(dense.optimizer_s, h.optimizer_s);
}

TEST(PerfModel, HierarchicalAcrossNodes) {
  // 2 nodes of 2 ranks: hier = reduce-scatter within the node + allreduce of half the bytes across + allgather within
  const MachineProfile p = two_level_profile();
  StepInputs in;
  in.model = gpt();
  in.train.global_batch = 8;
  in.strategy = "dp";
  in.dp = 4;
  in.ranks_per_node = 2;
  in.bucket_bytes = 1e12;  // one bucket
  in.overlap = false;
  models::Gpt<double> m(in.model.gpt);
  m.build(0, false, false);
  const double n = double(m.params().numel()) * 4;
  const auto& intra = p.collectives[0].link;
  const auto inter = p.collectives[4].link;
  const double hier = collective_time("ring", "reduce_scatter", 2, n, intra) +
                      collective_time("ring", "allreduce", 2, n / 2, inter) +
                      collective_time("ring", "allgather", 2, n, intra);
  const double flat = collective_time("ring", "allreduce", 4, n, inter);
  in.algo = "hier";
  EXPECT_NEAR(predict_step(in, p).comm_pure_s, hier, 1e-12);
  in.algo = "ring";
  EXPECT_NEAR(predict_step(in, p).comm_pure_s, flat, 1e-12);
  in.algo = "auto";
  EXPECT_NEAR(predict_step(in, p).comm_pure_s, std::min(hier, flat), 1e-12);
  EXPECT_LT(hier, flat);
}

TEST(PerfModel, MixedPrecisionPieces) {
  // fp16: gemms at the half rates, 2-byte messages and gradients, the optimizer on fp32 master weights
  MachineProfile p = toy_profile();
  p.gemm_half_small = p.gemm_half_medium = p.gemm_half_large = 8e11;  // 8× the fp32 rate
  StepInputs in;
  in.model = gpt();
  in.train.global_batch = 8;
  in.strategy = "tp";
  in.tp = 2;
  const auto fp32 = predict_step(in, p);
  in.model.dtype = "fp16";
  const auto half = predict_step(in, p);
  EXPECT_NEAR(half.comm_pure_s, 4 * 4 * collective_time("ring", "allreduce", 2, 8.0 * 128 * 256 * 2, p.collectives[0].link), 1e-12);
  EXPECT_LT(half.forward_s, fp32.forward_s / 2);  // gemms 8× and pointwise 2× faster
  models::Gpt<double> m(in.model.gpt);
  m.build(0, false, false);
  const double psi = double(m.params().numel());
  EXPECT_NEAR(half.optimizer_s, psi / 2 * 30 / p.memory_Bps, 1e-15);  // 4 + 8 + 16 + 2 bytes per parameter
  EXPECT_NEAR(fp32.optimizer_s, psi / 2 * 28 / p.memory_Bps, 1e-15);
}

TEST(PerfModel, GroupsAcrossNodes) {
  // dp groups are tp ranks apart: with tp = 8 on nodes of 8, each replica's gradient allreduce crosses nodes with one
  // rank per node (the network's fit, no hierarchy); tensor groups stay inside a node; pipeline neighbours (tp·dp
  // ranks apart) cross once a stage fills a node
  const MachineProfile p = two_level_profile();
  StepInputs in;
  in.model = gpt();
  in.train.global_batch = 16;
  in.strategy = "tp";
  in.ranks_per_node = 8;
  in.tp = 4;  // the GPT has 4 heads
  in.dp = 4;  // 16 ranks: two nodes, each replica's 4 tensor ranks inside one
  in.bucket_bytes = 1e12;
  in.overlap = false;
  in.algo = "auto";
  models::Gpt<double> m(in.model.gpt);
  m.build(0, false, false);
  const double n = double(m.params().numel()) / 4 * 4;
  const auto r = predict_step(in, p);
  const double act = 16.0 / 4 * 128 * 256 * 4;
  const double tp_s = 4 * 4 * collective_time("ring", "allreduce", 4, act, p.collectives[0].link);
  // 4 replicas, 2 on each node: hier = rs among 2 + allreduce of n/2 among 2 nodes + ag among 2
  const double hier = collective_time("ring", "reduce_scatter", 2, n, p.collectives[0].link) +
                      collective_time("ring", "allreduce", 2, n / 2, p.collectives[4].link) +
                      collective_time("ring", "allgather", 2, n, p.collectives[0].link);
  const double flat = collective_time("ring", "allreduce", 4, n, p.collectives[4].link);
  EXPECT_NEAR(r.comm_pure_s, tp_s + std::min(hier, flat), 1e-12);
  in.tp = 4;
  in.ranks_per_node = 4;  // now one replica per node: the allreduce is among one rank per node
  EXPECT_NEAR(predict_step(in, p).comm_pure_s, tp_s + flat, 1e-12);

  // a pipeline of 2 stages of 4 replicas: on one node of 8 its transfers stay inside; on nodes of 4 each stage is a
  // node and every transfer crosses (the replicas' allreduce stays inside either way)
  in.strategy = "pp";
  in.tp = 1;
  in.dp = 4;
  in.pp = 2;
  in.microbatches = 4;
  in.ranks_per_node = 8;
  const auto inside = predict_step(in, p);
  in.ranks_per_node = 4;
  const auto across = predict_step(in, p);
  const double mb_act = 16.0 / 4 / 4 * 128 * 256 * 4;  // a microbatch's activations
  const double hop_in = collective_time("ring", "allgather", 2, 2 * mb_act, p.collectives[2].link);
  const double hop_out = collective_time("ring", "allgather", 2, 2 * mb_act, p.collectives[6].link);
  EXPECT_NEAR(across.comm_pure_s - inside.comm_pure_s, 2 * 4 * (hop_out - hop_in), 1e-12);
}

TEST(PerfModel, MegatronLm2021Table1) {
  // Narayanan et al., "Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM" (SC'21),
  // Table 1: GPT models of 1.7B to 1T parameters (V = 51200, s = 2048) on Selene's DGX A100 nodes, mixed precision,
  // activation recomputation, PTD-P; achieved teraFLOP/s per GPU counted by the paper's Eq. 3,
  // F = 96·B·s·l·h²·(1 + s/6h + V/16lh). The model predicts the step from inputs/machines/a100_dgx_hdr.toml (figures
  // from datasheets and published measurements, none fitted to this table) under what the paper describes or
  // Megatron-LM 2021 did by default: microbatches of one sequence, 1F1B, the data-parallel allreduce after the
  // pipeline's flush (not overlapped), Adam.
  const auto prof = read_profile("profile", PARTRAIN_SOURCE_DIR "/inputs/machines/a100_dgx_hdr.toml");
  struct Row {
    double billions;
    int heads, hidden, layers, t, p, gpus, batch;
    double tflops;  // published, per GPU
  };
  const Row rows[] = {{1.7, 24, 2304, 24, 1, 1, 32, 512, 137},        {3.6, 32, 3072, 30, 2, 1, 64, 512, 138},
                      {7.5, 32, 4096, 36, 4, 1, 128, 512, 142},       {18.4, 48, 6144, 40, 8, 1, 256, 1024, 135},
                      {39.1, 64, 8192, 48, 8, 2, 512, 1536, 138},     {76.1, 80, 10240, 60, 8, 4, 1024, 1792, 140},
                      {145.6, 96, 12288, 80, 8, 8, 1536, 2304, 148},  {310.1, 128, 16384, 96, 8, 16, 1920, 2160, 155},
                      {529.6, 128, 20480, 105, 8, 35, 2520, 2520, 163}, {1008.0, 160, 25600, 128, 8, 64, 3072, 3072, 163}};
  std::vector<double> errors;
  std::printf("%8s %6s %6s %14s %10s %10s %8s\n", "params", "GPUs", "t×p", "step s (model)", "TF/GPU", "published",
              "error");
  for (const auto& row : rows) {
    StepInputs in;
    in.strategy = "pp";
    in.model.kind = "gpt";
    in.model.dtype = "fp16";
    in.model.gpt.vocab = 51200;
    in.model.gpt.seq_len = 2048;
    in.model.gpt.layers = row.layers;
    in.model.gpt.channels = row.hidden;
    in.model.gpt.heads = row.heads;
    in.tp = row.t;
    in.pp = row.p;
    in.dp = row.gpus / (row.t * row.p);
    in.train.global_batch = row.batch;
    in.microbatches = row.batch / in.dp;
    in.recompute = true;
    in.overlap = false;
    in.algo = in.tp_algo = "auto";
    in.ranks_per_node = in.ranks_on_node = 8;
    models::Gpt<double> m(in.model.gpt);
    m.build(0, false, false);
    const auto r = predict_step(in, prof);
    const double B = row.batch, s = 2048, l = row.layers, h = row.hidden, V = 51200;
    // the same models: the paper's Eq. 2, P = 12·l·h²·(1 + 13/12h + (V + s)/12lh), and the final LayerNorm's 2h it
    // leaves out, exactly (its table rounds: 1.65B is "1.7")
    const double P = 12 * l * h * h * (1 + 13 / (12 * h) + (V + s) / (12 * l * h));
    EXPECT_NEAR(double(m.params().numel()), P + 2 * h, 1e-9 * P);
    EXPECT_NEAR(P / 1e9, row.billions, 0.05 * row.billions);
    const double flops = 96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h));
    const double tf = flops / r.step_s / row.gpus / 1e12, err = tf / row.tflops - 1;
    errors.push_back(std::fabs(err));
    std::printf("%7.1fB %6d %6s %14.2f %10.1f %10.0f %+7.1f%%\n", row.billions, row.gpus,
                (std::to_string(row.t) + "×" + std::to_string(row.p)).c_str(), r.step_s, tf, row.tflops, 100 * err);
    EXPECT_LT(std::fabs(err), 0.20) << row.billions << "B";
    EXPECT_TRUE(r.note.empty()) << r.note;
  }
  std::sort(errors.begin(), errors.end());
  const double median = 0.5 * (errors[4] + errors[5]);
  std::printf("median |error| %.1f%%\n", 100 * median);
  EXPECT_LE(median, 0.15);
}

TEST(PerfModel, ExpertParallelMixtralLikeOnH100) {
  // Megatron-Core's MoE README: Mixtral 8x7B trains in bf16 at 468 TFLOP/s per H100 (MCore v0.9; 64 GPUs). The
  // model's what-if for a Mixtral-sized GPT (L = 32, C = 4096, 32 heads, V = 32000, T = 4096, 8 experts of C → 4C → C
  // in every block, top-2) at expert parallelism 8 within each node × data parallelism 8, 256 sequences, capacity 1:
  // TFLOP/s per GPU from the model's own FLOPs (3× its forward). Its experts are 2 gemms of 4C where Mixtral's are 3
  // of 3.5C (SwiGLU), and Megatron ran pipeline stages beside EP (TP1 PP4 EP8): the rate is the comparison.
  const auto prof = read_profile("profile", PARTRAIN_SOURCE_DIR "/inputs/machines/h100_nvlink_ndr.toml");
  StepInputs in;
  in.strategy = "ep";
  in.model.kind = "gpt";
  in.model.dtype = "bf16";
  in.model.gpt = models::GptConfig{32000, 4096, 32, 4096, 32};
  in.model.gpt.moe.every = 1;
  in.model.gpt.moe.experts = 8;
  in.model.gpt.moe.top_k = 2;
  in.model.gpt.moe.capacity_factor = 1.0;
  in.train.global_batch = 256;
  in.dp = 64;
  in.ep = 8;
  in.ranks_per_node = in.ranks_on_node = 8;
  in.algo = "auto";
  in.moe_imbalance = 1.0;  // balanced: what the load-balancing loss aims at
  const auto r = predict_step(in, prof);
  const double flops = 3 * models::forward_flops(in.model, in.train.global_batch);
  const double tf = flops / r.step_s / 64 / 1e12;
  std::printf("Mixtral-like, ep 8 x dp 8 on H100: step %.3f s, all-to-all %.1f ms, %.0f TFLOP/s per GPU (published 468, "
              "%+.1f%%)\n", r.step_s, 1e3 * r.comm_pure_s, tf, 100 * (tf / 468 - 1));
  EXPECT_LT(std::fabs(tf / 468 - 1), 0.20);
  EXPECT_TRUE(r.note.empty()) << r.note;
  // the four all-to-alls of every MoE block (the kept rows: 256/64 sequences × T × k × C × 2 bytes) are exposed
  const double a2a = collective_seconds(prof, "ring", "alltoall", 8, 256.0 / 64 * 4096 * 2 * 4096 * 2, false, nullptr);
  EXPECT_GT(a2a, 0);
  EXPECT_GE(r.comm_exposed_s, 4 * 32 * a2a);
  // an imbalanced routing costs what the busiest expert rank computes beyond its share
  auto hot = in;
  hot.moe_imbalance = 1.5;
  const auto rh = predict_step(hot, prof);
  EXPECT_GT(rh.forward_s, r.forward_s);
  EXPECT_NEAR(rh.backward_s - r.backward_s, 2 * (rh.forward_s - r.forward_s), 1e-9);
}

TEST(PerfModel, AttentionAtItsMeasuredRate) {
  // With attention_fps the block's 4·N·T·C attention FLOPs leave the gemm rate and its N·H·T probabilities the
  // pointwise one: the compute moves by exactly the difference, forward and (twice) backward
  auto p = toy_profile();
  models::ModelSpec m;
  m.kind = "gpt";
  m.gpt = models::GptConfig{512, 1024, 2, 256, 4};
  const auto before = predict_compute(m, 2, p);
  p.attention_fps = 2e10;
  const auto after = predict_compute(m, 2, p);
  const double rows = 2.0 * 1024, a = 4.0 * rows * 1024 * 256, probs = rows * 4 * 1024;
  const double rate = p.gemm_rate(rows, 4 * 256, 256);
  const double pw = p.pointwise_eps > 0 ? probs / p.pointwise_eps : 2 * probs * 4 / p.memory_Bps;
  EXPECT_NEAR(after.forward_s - before.forward_s, 2 * (a / 2e10 - a / rate - pw), 1e-9 * after.forward_s);
  EXPECT_NEAR(after.backward_s - before.backward_s, 2 * (after.forward_s - before.forward_s), 1e-9 * after.backward_s);
}

TEST(PerfModel, ContextParallelRingAndUlysses) {
  // A 7B-class GPT at T = 128k in bf16 on the H100 profile, tp 8 within a node: cp 8 across nodes, ring or Ulysses,
  // against cp 1 (docs/cp.md, The performance model)
  const auto prof = read_profile("profile", PARTRAIN_SOURCE_DIR "/inputs/machines/h100_nvlink_ndr.toml");
  StepInputs one;
  one.strategy = "tp";
  one.model.kind = "gpt";
  one.model.dtype = "bf16";
  one.model.gpt = models::GptConfig{32000, 131072, 32, 4096, 32};
  one.train.global_batch = 1;
  one.tp = 8;
  one.sequence_parallel = true;
  one.ranks_per_node = one.ranks_on_node = 8;
  auto ring = one, ulysses = one;
  ring.cp = ulysses.cp = 8;
  ulysses.cp_kind = "ulysses";
  ulysses.tp = 4;  // 32 heads: 8 per tensor-parallel rank, 1 per context-parallel rank
  auto ulysses_one = ulysses;
  ulysses_one.cp = 1;
  const auto r1 = predict_step(one, prof), rr = predict_step(ring, prof), ru = predict_step(ulysses, prof),
             ru1 = predict_step(ulysses_one, prof);
  // Ulysses computes the whole attention for 1/cp of the heads: exactly 1/cp of the work; the ring skips the
  // chunk pairs the zigzag masks, so less than that
  EXPECT_NEAR(ru.forward_s, ru1.forward_s / 8, 1e-9 * ru1.forward_s);
  // the ring: 1/cp of the whole forward less, per layer, the masked chunk pairs' share of the dense attention
  // (4·Tl·T·(C/t) FLOPs at the attention products' rate; this profile has no attention rates of its own)
  const double Tl = 131072.0 / 8, dense = 4 * Tl * 131072.0 * 512 / prof.gemm_rate(Tl, 131072.0, 128, true);
  EXPECT_NEAR(rr.forward_s, r1.forward_s / 8 - 32 * dense * (1 - 17.0 / 32), 1e-9 * rr.forward_s);
  EXPECT_NEAR(rr.backward_s, 2 * rr.forward_s, 1e-9 * rr.backward_s);
  // Ulysses' all-to-alls are never hidden; the ring hides its key/value hops behind the blocks but for the last
  // gradient hop home of every layer (a point-to-point transfer of 2·Tl·(C/t) bf16 elements across nodes)
  const double hop = collective_seconds(prof, "ring", "allgather", 2, 2 * 2 * 16384.0 * 512 * 2, true, nullptr);
  EXPECT_GT(hop, 0);
  EXPECT_GE(rr.comm_exposed_s, 32 * hop);
  const double qkv = collective_seconds(prof, "ring", "alltoall", 8, 3 * 16384.0 * 1024 * 2, true, nullptr),
               out = collective_seconds(prof, "ring", "alltoall", 8, 16384.0 * 1024 * 2, true, nullptr);
  EXPECT_GE(ru.comm_exposed_s, 32 * 2 * (qkv + out));
  // activations per rank ∝ T/cp; the ring keeps no T × T probabilities, Ulysses keeps them for its heads
  const auto m1 = predict_memory(one), mr = predict_memory(ring), mu = predict_memory(ulysses);
  EXPECT_LT(mr.activations, mu.activations);
  EXPECT_LT(mu.activations, m1.activations);
  EXPECT_NEAR(predict_memory(ulysses).activations, predict_memory(ulysses_one).activations / 8,
              1e-9 * mu.activations);
}
