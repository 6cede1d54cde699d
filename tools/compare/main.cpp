// partrain-compare: result files from different machines, library versions or strategies, side by side.
//   partrain-compare results/reference sweeps/strong/results [more files or directories] [--csv | --markdown]
// Each argument is one source (a machine, a build): a result file or a directory searched for *.h5. Runs are
// grouped by (app, strategy and its variant — a pipeline schedule, ... —, model, ranks); each source's cell shows the median step time over its repetitions,
// throughput, parallel efficiency against that source's smallest rank count (strong: p1·T1/(p·Tp) when the global
// batch is unchanged; weak: T1/Tp when it grows with the ranks — inferred from the decks), the exposed
// communication share, and the step-time ratio to the first source. Runs whose decks differ are never compared:
// their cells say "config differs". Any file that is not a readable partrain result of schema version 1 is an
// error naming the file (exit code 2).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <tuple>

#include "partrain/core/cli.hpp"
#include "partrain/core/error.hpp"
#include "partrain/perf/profile_compare.hpp"
#include "result_reader.hpp"
#include "scaling.hpp"

namespace {
using namespace partrain;
using namespace partrain::compare;

struct Entry {  // one source's runs for one row with one configuration
  std::vector<Run> runs;
  double step_s = NAN, throughput = NAN, exposed_pct = NAN, efficiency = NAN, speedup = NAN;
  int base_ranks = 0;
  std::string scaling, base_strategy;  ///< base, strong, weak; the baseline's strategy
  double predicted_s = NAN;  ///< the performance model's step (median over the runs that have one)
  double bubble_pct = NAN, memory_mib = NAN;
  std::string unit, note;
};

struct Source {
  std::string label;
  std::vector<Run> runs;
  std::optional<perf::KeyRates> rates;  ///< from the source directory's machine.toml (partrain-calibrate), if any
};

/// The rates of the machine profile a source directory keeps beside its results (machine_profile_of), if any.
std::optional<perf::KeyRates> source_rates(const std::string& source) {
  const std::string path = machine_profile_of(source);
  if (path.empty()) return std::nullopt;
  return perf::key_rates(perf::read_profile(path, path));
}

using Key = std::tuple<std::string, std::string, std::string, int, int>;  // app, strategy, model, ranks, threads

double med(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

/// Entries of one source for one key: runs grouped by identical configuration.
std::vector<Entry> entries_for(const Source& s, const Key& k) {
  std::vector<Entry> out;
  for (const auto& r : s.runs) {
    if (Key{r.app, r.strategy, r.model, r.nranks, r.threads} != k) continue;
    auto it = std::find_if(out.begin(), out.end(), [&](const Entry& e) { return e.runs.front().config == r.config; });
    if (it == out.end()) {
      Entry e;
      e.runs.push_back(r);
      out.push_back(std::move(e));
    }
    else it->runs.push_back(r);
  }
  for (auto& e : out) {
    std::vector<double> t, tp, ex, pr, bu, me;
    for (const auto& r : e.runs) {
      t.push_back(r.step_time_s);
      pr.push_back(r.predicted_step_time_s);
      bu.push_back(100.0 * r.bubble_fraction);
      me.push_back(r.memory_bytes / 1048576.0);
      if (r.strategy == "collectives") {
        tp.push_back(r.busbw_GBps);
        e.unit = "GB/s busbw (" + r.busbw_algo + ")";
      } else if (r.tokens_per_s > 0) {
        tp.push_back(r.tokens_per_s);
        e.unit = "tok/s";
      } else {
        tp.push_back(r.samples_per_s);
        e.unit = "samples/s";
      }
      ex.push_back(!std::isnan(r.comm_exposed_share) ? 100.0 * r.comm_exposed_share
                   : r.step_time_s > 0                ? 100.0 * r.comm_exposed_s / r.step_time_s
                                                      : NAN);
    }
    e.step_s = med(t);
    e.throughput = med(tp);
    e.exposed_pct = med(ex);
    e.predicted_s = med(pr);
    e.bubble_pct = med(bu);
    e.memory_mib = med(me);
    if (e.runs.size() > 1) e.note = std::to_string(e.runs.size()) + " repetitions";
    if (e.runs.front().threads > 1)
      e.note += (e.note.empty() ? "" : ", ") + std::to_string(e.runs.front().threads) + " threads per rank";
  }
  if (out.size() > 1)
    for (std::size_t i = 0; i < out.size(); ++i) out[i].note += (out[i].note.empty() ? "" : ", ") + std::string("config ") + std::to_string(i + 1) + " of " + std::to_string(out.size());
  return out;
}

/// The entry's parallel efficiency against its source's baseline (scaling.hpp: the one definition, which
/// plot_scaling.py reads from --csv).
void efficiency(const Source& s, Entry& e) {
  const Scaling sc = scaling_of(e.runs, s.runs);
  e.efficiency = sc.efficiency;
  e.speedup = sc.speedup;
  e.base_ranks = sc.base_ranks;
  e.scaling = sc.kind;
  e.base_strategy = sc.base_strategy;
  if (!sc.kind.empty()) e.note += std::string(e.note.empty() ? "" : ", ") + sc.kind;
}

/// A library string for the header: MPICH's configure line dropped, cut at a word boundary (never mid-word).
std::string short_text(std::string s, std::size_t limit = 110) {
  const auto conf = s.find(" MPICH configure:");
  if (conf != std::string::npos) s.resize(conf);
  if (s.size() <= limit) return s;
  const auto space = s.rfind(' ', limit);
  return s.substr(0, space == std::string::npos ? limit : space) + " ...";
}

std::string fmt(double v, const char* f) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

int run(int argc, char** argv) {
  CLI::App app{"partrain-compare: partrain result files side by side", "partrain-compare"};
  std::vector<std::string> args;
  bool csv = false, markdown = false;
  app.add_option("sources", args,
                 "result files or directories (a directory's machine.toml, a partrain-calibrate profile, is compared "
                 "too); the first is the baseline")
      ->required();
  auto* csv_flag = app.add_flag("--csv", csv, "comma-separated output (one line per row and source)");
  app.add_flag("--markdown", markdown, "a markdown table")->excludes(csv_flag);
  if (int rc = parse_command_line(app, argc, argv); rc >= 0) return rc;
  std::vector<Source> sources;
  for (const auto& a : args) {
    Source s{a, {}, source_rates(a)};
    for (const auto& f : result_files(a)) s.runs.push_back(read_run(f));
    sources.push_back(std::move(s));
  }
  std::vector<Key> keys;
  for (const auto& s : sources)
    for (const auto& r : s.runs) keys.emplace_back(r.app, r.strategy, r.model, r.nranks, r.threads);
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  int ws = 18, wm = 36;  // the text table's strategy and model columns fit the longest (the NMT's strategy is long)
  for (const auto& k : keys) {
    ws = std::max(ws, int(std::get<1>(k).size()));
    wm = std::max(wm, int(std::get<2>(k).size()));
  }

  if (!csv) {
    for (std::size_t i = 0; i < sources.size(); ++i) {
      const Run* pick = &sources[i].runs.front();  // provenance from a training run where there is one
      for (const auto& x : sources[i].runs)
        if (x.strategy != "collectives") {
          pick = &x;
          break;
        }
      const auto& r = *pick;
      const char* m = markdown ? ">" : "#";
      const std::size_t nr = sources[i].runs.size();
      std::printf("%s [%zu] %s: %zu run%s; hosts %s; commit %s\n", m, i + 1, sources[i].label.c_str(), nr,
                  nr == 1 ? "" : "s", r.hostnames.c_str(), r.git_commit.c_str());
      std::printf("%s     MPI: %s\n%s     BLAS: %s\n", m, short_text(r.mpi_version).c_str(), m, short_text(r.blas).c_str());
      if (sources[i].rates) {
        std::printf("%s     machine (machine.toml): %s\n", m, perf::describe_rates(*sources[i].rates).c_str());
        if (i > 0 && sources[0].rates)
          std::printf("%s     against [1]: %s — step-time ratios near these are this machine's speed, not a regression\n",
                      m, perf::compare_rates(*sources[i].rates, *sources[0].rates).c_str());
      }
    }
    if (markdown) std::printf("\n| app | strategy | model | ranks | source | ms/step | predicted | error | throughput | efficiency | exposed comm | bubble | mem/rank MiB | ratio to [1] | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    else std::printf("%-22s %-*s %-*s %5s %4s %11s %10s %7s %22s %6s %8s %7s %8s %9s  %s\n", "# app", ws, "strategy", wm, "model", "ranks",
                     "src", "ms/step", "predicted", "error", "throughput", "eff", "exposed", "bubble", "mem MiB", "ratio", "note");
  } else {
    std::printf("app,strategy,model,ranks,source,step_time_ms,throughput,throughput_unit,efficiency,exposed_comm_pct,ratio_to_first,note,predicted_ms,prediction_error_pct,bubble_pct,memory_per_rank_mib,speedup,base_ranks,scaling,base_strategy\n");
  }
  for (const auto& k : keys) {
    const auto first = entries_for(sources[0], k);
    for (std::size_t i = 0; i < sources.size(); ++i) {
      auto entries = entries_for(sources[i], k);
      if (entries.empty()) continue;
      for (auto& e : entries) {
        efficiency(sources[i], e);
        std::string ratio = "-";
        if (i > 0 && !first.empty()) {
          auto same = std::find_if(first.begin(), first.end(), [&](const Entry& f) { return f.runs.front().config == e.runs.front().config; });
          if (same == first.end()) ratio = "config differs";
          else ratio = fmt(e.step_s / same->step_s, "%.2f");
        } else if (i == 0) {
          ratio = "1.00";
        }
        const std::string tput = fmt(e.throughput, "%.1f") + " " + e.unit;
        const std::string eff = fmt(e.efficiency * 100, "%.0f%%"), exp = fmt(e.exposed_pct, "%.1f%%");
        const std::string ms = fmt(e.step_s * 1e3, "%.3f");
        const std::string pred = fmt(e.predicted_s * 1e3, "%.3f");
        const double err_pct = 100.0 * (e.predicted_s - e.step_s) / e.step_s;
        const std::string err = fmt(err_pct, "%+.1f%%");
        const std::string bub = fmt(e.bubble_pct, "%.1f%%"), mem = fmt(e.memory_mib, "%.0f");
        if (csv)
          std::printf("%s,%s,\"%s\",%d,\"%s\",%s,%s,%s,%s,%s,%s,\"%s\",%s,%s,%s,%s,%s,%s,%s,\"%s\"\n", std::get<0>(k).c_str(), std::get<1>(k).c_str(),
                      std::get<2>(k).c_str(), std::get<3>(k), sources[i].label.c_str(), fmt(e.step_s * 1e3, "%.6g").c_str(),
                      fmt(e.throughput, "%.6g").c_str(), e.unit.c_str(), fmt(e.efficiency, "%.6g").c_str(),
                      fmt(e.exposed_pct, "%.2f").c_str(), ratio == "config differs" ? "" : ratio.c_str(),
                      (e.note + (ratio == "config differs" ? (e.note.empty() ? "" : "; ") + ratio : "")).c_str(),
                      std::isnan(e.predicted_s) ? "" : fmt(e.predicted_s * 1e3, "%.6g").c_str(),
                      std::isnan(err_pct) ? "" : fmt(err_pct, "%.2f").c_str(),
                      std::isnan(e.bubble_pct) ? "" : fmt(e.bubble_pct, "%.2f").c_str(),
                      std::isnan(e.memory_mib) ? "" : fmt(e.memory_mib, "%.1f").c_str(),
                      std::isnan(e.speedup) ? "" : fmt(e.speedup, "%.6g").c_str(),
                      e.base_ranks ? std::to_string(e.base_ranks).c_str() : "", e.scaling.c_str(), e.base_strategy.c_str());
        else if (markdown)
          std::printf("| %s | %s | %s | %d | [%zu] | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", std::get<0>(k).c_str(), std::get<1>(k).c_str(),
                      std::get<2>(k).c_str(), std::get<3>(k), i + 1, ms.c_str(), pred.c_str(), err.c_str(), tput.c_str(), eff.c_str(),
                      exp.c_str(), bub.c_str(), mem.c_str(), ratio.c_str(), e.note.c_str());
        else
          std::printf("%-22s %-*s %-*s %5d [%zu] %11s %10s %7s %22s %6s %8s %7s %8s %9s  %s\n", std::get<0>(k).c_str(), ws,
                      std::get<1>(k).c_str(), wm, std::get<2>(k).c_str(), std::get<3>(k), i + 1, ms.c_str(), pred.c_str(), err.c_str(), tput.c_str(), eff.c_str(),
                      exp.c_str(), bub.c_str(), mem.c_str(), ratio.c_str(), e.note.c_str());
      }
    }
  }
  if (!csv)
    std::printf("%s ms/step: median step time over the timed steps (collectives rows: one call at the largest message "
                "size, best algorithm); predicted, error: the performance model's step (runs with --profile) and "
                "(predicted - measured) / measured; bubble: the pipeline's idle share; mem MiB: rank 0's peak memory "
                "(parameters, gradients, optimizer, activations, buffers); eff: parallel efficiency, (throughput / base "
                "throughput) x (base ranks / ranks), against the same app, model and configuration at the source's "
                "smallest rank count (batch and degrees may follow the ranks); exposed: "
                "communication the step waited for, share of the step\n",
                markdown ? "\n>" : "#");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return partrain::run_tool("partrain-compare", [&] { return run(argc, argv); });
}
