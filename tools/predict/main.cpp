// partrain-predict: the performance model at any scale (docs/model.md). From a deck and a machine
// profile, the predicted step — its breakdown, the memory per rank and the scaling efficiency — over a range of rank
// counts, strong or weak; or, with --search, every layout dp × tp × pp of one rank count ranked by predicted step time
// under a memory limit. Nothing runs: this answers questions no machine here can.
//   partrain-predict --deck inputs/dp_gpt_small.toml --profile inputs/machines/h100_nvlink_ndr.toml --ranks 8,64,512
//   partrain-predict --deck D --profile P --strategy pp --ranks 64 --search --memory-limit-gib 80
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "partrain/core/cli.hpp"
#include "partrain/core/config.hpp"
#include "partrain/core/error.hpp"
#include "partrain/core/runtime.hpp"
#include "partrain/io/h5.hpp"
#include "partrain/models/gpt.hpp"
#include "partrain/models/mlp.hpp"
#include "partrain/models/model_config.hpp"
#include "partrain/models/nmt.hpp"
#include "partrain/perf/inputs.hpp"
#include "partrain/parallel/pipeline/schedule.hpp"
#include "partrain/parallel/tp/gpt.hpp"
#include "partrain/perf/memory_model.hpp"

using namespace partrain;

namespace {

/// The deck's model, data and train sections through the declared keys (every check the mini-apps make).
std::pair<models::ModelSpec, models::TrainSpec> read_specs(const DeckTable& deck) {
  Deck d;
  models::declare_model_keys(d);
  models::declare_train_keys(d);
  d.load_string(deck.sections_toml({"model", "data", "train"}), "--deck");
  return {models::read_model_spec(d), models::read_train_spec(d)};
}

std::vector<int> parse_ranks(const std::string& text) {
  std::vector<int> out;
  const auto colon = text.find(':');
  try {
    if (colon != std::string::npos) {  // a:b — a, 2a, 4a, … up to b
      const int a = std::stoi(text.substr(0, colon)), b = std::stoi(text.substr(colon + 1));
      if (a < 1 || b < a) throw std::invalid_argument("range");
      for (long long n = a; n <= b; n *= 2) out.push_back(int(n));
    } else {
      std::stringstream ss(text);
      std::string item;
      while (std::getline(ss, item, ',')) {
        std::size_t used = 0;
        const int n = std::stoi(item, &used);
        if (used != item.size() || n < 1) throw std::invalid_argument("item");
        out.push_back(n);
      }
    }
  } catch (const std::exception&) {
    input_error("--ranks", text, "must be N, a list N1,N2,… or a range A:B (A, 2A, 4A, … up to B), every N >= 1");
  }
  if (out.empty()) input_error("--ranks", text, "names no rank count");
  return out;
}

/// The mini-app that runs layout dp×tp×pp when `requested` was asked for: the requested one where it can (dp and zero
/// only at tp = pp = 1, tp at pp = 1, pp at any), else partrain-pp (pp > 1) or partrain-tp (tp > 1). --search and
/// --layout price every layout through this one choice (they once priced 64×1×1 of a pp deck as dp and as pp).
std::string strategy_for(const std::string& requested, int tp, int pp) {
  if (requested == "pp" || (requested == "tp" && pp == 1) || (tp == 1 && pp == 1)) return requested == "serial" ? "dp" : requested;
  return pp > 1 ? "pp" : "tp";
}

/// Why the mini-app would refuse this layout (its own checks: partrain-pp's schedule, layers and microbatches,
/// partrain-tp's shapes), or "" when it would run it.
std::string layout_refusal(const perf::StepInputs& in) {
  const auto& m = in.model;
  const std::int64_t B = in.train.global_batch;
  if (in.dp < 1 || B % in.dp != 0) return "train.batch does not divide by dp";
  if (in.tp > 1) {
    if (m.kind != "gpt") return "tensor parallelism needs the GPT";
    try {
      parallel::check_tp_shapes(m.gpt, in.tp);
    } catch (const InputError& e) {
      return e.what();
    }
  }
  if (in.strategy == "pp") {
    namespace pl = parallel::pipeline;
    pl::ScheduleSpec s;
    if (!pl::parse(in.schedule, s.kind)) return "pp.schedule " + in.schedule + " is unknown";
    s.p = in.pp;
    s.m = in.microbatches;
    s.v = in.chunks;
    if (auto why = pl::why_not(s); !why.empty()) return why;
    if ((B / in.dp) % std::max(1, in.microbatches) != 0) return "train.batch / dp does not divide by pp.microbatches";
    const std::int64_t layers = m.kind == "gpt" ? m.gpt.layers : std::int64_t(m.mlp.widths.size()) - 1;
    if (layers < s.chunks()) return "fewer layers than pp.degree x pp.chunks";
    if (in.tp > 1 && pl::splits_backward(s.kind)) return "pp.schedule zb with tp.degree > 1";
    const std::int64_t mb_rows = B / in.dp / std::max(1, in.microbatches) * (m.kind == "gpt" ? m.gpt.seq_len : 1);
    if (in.sequence_parallel && in.tp > 1 && mb_rows % in.tp != 0) return "a microbatch's rows do not divide by tp.degree";
  } else if (m.kind == "gpt" && m.gpt.layers % in.pp != 0) {
    return "model.gpt.layers does not divide by pp.degree";
  }
  return "";
}

std::string mib(double b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", b / 1048576.0);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  register_kokkos_version_line();  // no runtime here (no MPI, no Kokkos started), but Kokkos's models
  return run_tool("partrain-predict", [&] {
    CLI::App app{"partrain-predict: the performance model's step, memory and scaling for any rank count and layout",
                 "partrain-predict"};
    std::vector<std::string> sets;
    std::string deck_path, profile_path, strategy = "dp", ranks_text = "1:64", scaling = "strong", layout, csv_path,
        precision;
    int ranks_per_node = 0;
    double memory_limit_gib = 0, moe_imbalance = 0;
    bool search = false, overwrite = false;
    app.add_option("--deck", deck_path, "input deck (any mini-app's; --print-deck writes a resolved one)")->required();
    app.add_option("--set", sets, "override a deck key: --set model.gpt.layers=24 (repeatable)")->type_name("KEY=VALUE");
    app.add_option("--profile", profile_path, "machine profile (partrain-calibrate, or inputs/machines/*.toml)")->required();
    app.add_option("--strategy", strategy, "serial | dp | tp | pp | zero | nmt | ps | ep")->capture_default_str();
    app.add_option("--moe-imbalance", moe_imbalance,
                   "ep: the busiest expert rank's rows over the mean (a run's /summary expert_rank_load_imbalance; "
                   "default: the capacity's bound)");
    app.add_option("--ranks", ranks_text, "N, N1,N2,… or A:B (A, 2A, 4A, … up to B)")->capture_default_str();
    app.add_option("--scaling", scaling, "strong (train.batch fixed) | weak (train.batch × N / first N)")->capture_default_str();
    app.add_option("--layout", layout, "dp×tp×pp (or DPxTPxPP) at every N: tp and pp fixed, dp = N / (tp·pp)");
    app.add_option("--precision", precision,
                   "fp32 | fp64 (the deck's model.dtype by default) | fp16 | bf16: mixed-precision training as "
                   "Megatron-LM runs it (a what-if: needs the profile's gemm_half_* rates)");
    app.add_option("--ranks-per-node", ranks_per_node, "ranks per node (default: the profile's)");
    app.add_flag("--search", search, "rank every layout dp × tp × pp of each N by predicted step time");
    app.add_option("--memory-limit-gib", memory_limit_gib, "with --search: layouts above this memory per rank are dropped");
    app.add_option("--csv", csv_path, "also write the table as CSV (tools/analysis/plot_predict.py draws it)");
    app.add_flag("--overwrite", overwrite, "replace an existing --csv file");
    if (int rc = parse_command_line(app, argc, argv); rc >= 0) return rc;

    const auto prof = perf::read_profile("--profile", profile_path);
    auto deck = DeckTable::load_file("--deck", deck_path);
    for (const auto& kv : sets) deck.apply_override(kv);  // section.key=value, the value as TOML (a bare word is a string)
    auto specs = read_specs(deck);  // not a structured binding: the lambdas below capture them (C++20 for bindings)
    auto& model = specs.first;
    auto& train = specs.second;
    if (!precision.empty()) {
      if (precision != "fp32" && precision != "fp64" && !perf::is_half(precision))
        input_error("--precision", precision, "must be fp32, fp64, fp16 or bf16");
      if (perf::is_half(precision) && !prof.has_half())
        input_error("--precision", precision, "the profile " + profile_path + " has no gemm_half_small/medium/large rates");
      model.dtype = precision;
    }
    const std::vector<std::string> strategies = {"serial", "dp", "tp", "pp", "zero", "nmt", "ps", "ep"};
    if (std::find(strategies.begin(), strategies.end(), strategy) == strategies.end())
      input_error("--strategy", strategy, "must be one of serial, dp, tp, pp, zero, nmt, ps, ep");
    if (strategy == "ep" && !model.gpt.moe.enabled())
      input_error("--strategy", strategy, "prices a mixture of experts: the deck needs model.gpt.moe.every > 0");
    if (moe_imbalance != 0 && strategy != "ep")
      input_error("--moe-imbalance", std::to_string(moe_imbalance), "is for --strategy ep");
    if (moe_imbalance != 0 && moe_imbalance < 1)
      input_error("--moe-imbalance", std::to_string(moe_imbalance), "must be >= 1 (the busiest expert rank over the mean)");
    if (scaling != "strong" && scaling != "weak") input_error("--scaling", scaling, "must be strong or weak");
    char limit[32];
    std::snprintf(limit, sizeof limit, "%g", memory_limit_gib);
    if (memory_limit_gib < 0) input_error("--memory-limit-gib", limit, "must be >= 0");
    if (memory_limit_gib > 0 && !search) input_error("--memory-limit-gib", limit, "is used by --search");
    if (search && !layout.empty()) input_error("--layout", layout, "cannot be combined with --search (which tries every layout)");
    int fixed_tp = 0, fixed_pp = 0;
    if (!layout.empty()) {
      std::string l = layout;
      for (const char* x : {"×", "x", "X", "*"})
        for (std::size_t at; (at = l.find(x)) != std::string::npos;) l.replace(at, std::strlen(x), " ");
      std::istringstream is(l);
      std::string d, t, p, rest;
      if (!(is >> d >> t >> p) || (is >> rest)) input_error("--layout", layout, "must be dp×tp×pp, e.g. 8x2x4 (dp may be '_': N / (tp·pp))");
      try {
        fixed_tp = std::stoi(t);
        fixed_pp = std::stoi(p);
      } catch (const std::exception&) {
        input_error("--layout", layout, "tp and pp must be integers");
      }
      if (fixed_tp < 1 || fixed_pp < 1) input_error("--layout", layout, "tp and pp must be >= 1");
    }
    if ((!layout.empty() || search) && (strategy == "nmt" || strategy == "ps" || strategy == "ep"))
      input_error(search ? "--search" : "--layout", search ? "" : layout, "prices dp × tp × pp layouts (dp, tp, pp, zero), not " + strategy);
    const auto ranks = parse_ranks(ranks_text);
    if (!csv_path.empty()) io::check_output_path("--csv", csv_path, overwrite);
    const int rpn = ranks_per_node > 0 ? ranks_per_node : prof.ranks_per_node;
    const std::int64_t batch0 = train.global_batch;

    struct Row {
      int n = 0, dp = 1, tp = 1, pp = 1, cp = 1;  ///< cp: the deck's cp.degree (partrain-tp's context parallelism)
      perf::StepPrediction p;
      perf::MemoryPrediction mem;
      double samples_per_s = 0, efficiency = NAN;
      std::string note;
    };
    std::string last_refusal;
    auto evaluate = [&](int n, int tp, int pp) -> std::optional<Row> {
      DeckTable d = deck;
      const std::string s = tp > 0 ? strategy_for(strategy, tp, pp) : strategy;
      if (tp > 0) d.set_int("tp", "degree", tp);
      if (pp > 0) d.set_int("pp", "degree", pp);
      auto t = train;
      if (scaling == "weak") t.global_batch = batch0 * n / ranks.front();
      perf::StepInputs in;
      try {
        in = perf::step_inputs(d, s, n, n > rpn && rpn > 0 ? rpn : 0, model, t);
      } catch (const InputError& e) {
        last_refusal = e.what();
        return std::nullopt;  // this N has no such layout
      }
      if (auto why = layout_refusal(in); !why.empty()) {
        last_refusal = why;
        return std::nullopt;
      }
      in.moe_imbalance = moe_imbalance;
      Row r;
      r.n = n;
      r.dp = in.dp;
      r.tp = in.tp;
      r.pp = in.pp;
      r.cp = in.cp;
      r.p = perf::predict_step(in, prof);
      r.mem = perf::predict_memory(in);
      r.samples_per_s = double(t.global_batch) / r.p.step_s;
      return r;
    };

    std::vector<Row> rows;
    for (int n : ranks) {
      if (search) {
        std::vector<Row> all;
        for (int tp = 1; tp <= n; tp *= 2)
          for (int pp = 1; tp * pp <= n; pp *= 2) {
            if (n % (tp * pp)) continue;
            if (auto r = evaluate(n, tp, pp)) {
              if (memory_limit_gib <= 0 || r->mem.total() <= memory_limit_gib * 1073741824.0) all.push_back(*r);
            }
          }
        std::sort(all.begin(), all.end(), [](const Row& a, const Row& b) { return a.p.step_s < b.p.step_s; });
        if (all.empty()) std::printf("# %d ranks: no layout fits (batch, heads, layers, memory limit)\n", n);
        for (std::size_t i = 0; i < std::min<std::size_t>(all.size(), 10); ++i) rows.push_back(all[i]);
      } else if (auto r = evaluate(n, fixed_tp, fixed_pp)) {
        rows.push_back(*r);
      } else {
        std::printf("# %d ranks: not run: %s\n", n, last_refusal.c_str());
      }
    }
    if (rows.empty()) {  // nothing to show is an error, not an empty table
      if (search) input_error("--ranks", ranks_text, "no layout of any rank count fits (batch, heads, layers, memory limit)");
      input_error(layout.empty() ? "--ranks" : "--layout", layout.empty() ? ranks_text : layout,
                  "fits none of the rank counts: " + last_refusal);
    }
    // efficiency against the first rank count printed (strong: p1·T1/(p·Tp); weak: T1/Tp)
    if (!search && !rows.empty()) {
      const Row& b = rows.front();
      for (auto& r : rows)
        r.efficiency = scaling == "strong" ? double(b.n) * b.p.step_s / (double(r.n) * r.p.step_s) : b.p.step_s / r.p.step_s;
    }
    std::printf("# partrain-predict: %s %s, strategy %s, %s scaling, profile %s (%s)\n", models::describe(model).c_str(),
                perf::is_half(model.dtype) ? ("mixed precision (" + model.dtype + ")").c_str() : model.dtype.c_str(),
                (layout.empty() || search ? strategy : strategy_for(strategy, fixed_tp, fixed_pp)).c_str(), scaling.c_str(), prof.name.c_str(), profile_path.c_str());
    std::printf("%7s %12s %10s %10s %9s %9s %9s %12s %12s %6s\n", "ranks", "dp×tp×pp cp", "step ms", "compute", "bubble",
                "optim", "comm exp", "mem/rank MiB", "samples/s", "eff");
    std::ofstream csv;
    if (!csv_path.empty()) {
      csv.open(csv_path);
      csv << "ranks,dp,tp,pp,step_s,compute_s,bubble_s,optimizer_s,comm_exposed_s,comm_pure_s,memory_bytes,samples_per_s,efficiency,cp\n";
    }
    for (const auto& r : rows) {
      const std::string lay = std::to_string(r.dp) + "×" + std::to_string(r.tp) + "×" + std::to_string(r.pp) +
                              (r.cp > 1 ? " cp" + std::to_string(r.cp) : "");
      std::printf("%7d %14s %10.2f %10.2f %9.2f %9.2f %9.2f %12s %12.1f %6s\n", r.n, lay.c_str(), r.p.step_s * 1e3,
                  (r.p.forward_s + r.p.backward_s) * 1e3, r.p.bubble_s * 1e3, r.p.optimizer_s * 1e3,
                  r.p.comm_exposed_s * 1e3, mib(r.mem.total()).c_str(), r.samples_per_s,
                  std::isnan(r.efficiency) ? "-" : (std::to_string(int(std::lround(100 * r.efficiency))) + "%").c_str());
      if (csv.is_open())
        csv << r.n << "," << r.dp << "," << r.tp << "," << r.pp << "," << r.p.step_s << ","
            << r.p.forward_s + r.p.backward_s << "," << r.p.bubble_s << "," << r.p.optimizer_s << ","
            << r.p.comm_exposed_s << "," << r.p.comm_pure_s << "," << r.mem.total() << "," << r.samples_per_s << ","
            << (std::isnan(r.efficiency) ? 0.0 : r.efficiency) << "," << r.cp << "\n";
    }
    if (!rows.empty() && !rows.front().p.note.empty()) std::printf("# model notes: %s\n", rows.front().p.note.c_str());
    if (!csv_path.empty()) std::printf("# table written to %s\n", csv_path.c_str());
    return 0;
  });
}
