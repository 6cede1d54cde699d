// partrain-ref: the single-process reference. Trains a reference model (GPT or MLP) on its synthetic task and
// prints one line per step, then a summary and a figure-of-merit line. Every strategy's mini-app is checked
// against what this computes.
//   partrain-ref --input inputs/ref_gpt_small.toml [--set train.steps=50] [--dump-state state.h5]
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "partrain/core/cli.hpp"
#include "partrain/core/error.hpp"
#include "partrain/core/log.hpp"
#include "partrain/core/memory.hpp"
#include "partrain/core/runtime.hpp"
#include "partrain/io/h5.hpp"
#include "partrain/io/state_dump.hpp"
#include "partrain/models/model_config.hpp"
#include "partrain/models/trainer.hpp"

namespace {
using namespace partrain;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0.0 : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

template <class T>
int train(const Deck& deck, const CommonOptions& opts, const models::ModelSpec& ms, const models::TrainSpec& ts) {
  auto model = models::make_model<T>(ms);
  auto data = models::make_dataset<T>(ms);
  models::ReferenceTrainer<T> trainer(*model, *data, ts);
  const std::int64_t rows = ts.global_batch * models::rows_per_sample(ms);
  const double flops_per_step = 3.0 * model->forward_flops(ts.global_batch);
  const bool gpt = ms.kind == "gpt";
  log0("# model " + models::describe(ms) + ": " + std::to_string(model->params().numel()) + " parameters, " +
       ms.dtype + ", " + std::to_string(flops_per_step / 1e9) + " GFLOP per step");
  log0("# BLAS: " + blas_info());

  ProgressLine progress(int(ts.steps), gpt ? "tok" : "samples");
  auto after = [&](std::int64_t s, const models::StepRecord& r) {
    const double per_s = double(gpt ? rows : ts.global_batch) / r.time_s;
    log0(progress.format(int(s + 1), r.loss, r.time_s, per_s));
  };
  io::StateDumpInfo dump{opts.dump_state, opts.overwrite, models::describe(ms), deck.to_toml()};
  auto before_last_update = [&](const models::Batch<T>& batch, double loss) {
    if (!opts.dump_state.empty())
      io::write_state_dump(dump, model->params(), batch, models::rows_per_sample(ms), loss);
  };
  const auto records = trainer.run(after, before_last_update);

  std::vector<double> times;
  bool finite = true;
  for (size_t i = 0; i < records.size(); ++i) {
    finite = finite && std::isfinite(records[i].loss);
    if (std::int64_t(i) >= ts.warmup) times.push_back(records[i].time_s);
  }
  const double t_med = median(times);
  const auto mem = memory_snapshot();
  log0("# memory peak: params " + format_bytes(double(mem.peak[0])) + ", grads " + format_bytes(double(mem.peak[1])) +
       ", optimizer " + format_bytes(double(mem.peak[2])) + ", activations " + format_bytes(double(mem.peak[3])) +
       ", rss " + format_bytes(double(peak_rss_bytes())));
  const double first = records.front().loss, last = records.back().loss;
  char line[512];
  std::snprintf(line, sizeof line, "# self-check: %s (losses finite; loss %.4f -> %.4f)", finite ? "PASS" : "FAIL",
                first, last);
  log0(line);
  std::snprintf(line, sizeof line,
                "FOM partrain-ref %s step_time_median_ms=%.3f %s_per_s=%.1f gflops_per_s=%.2f", 
                models::describe(ms).c_str(), t_med * 1e3, gpt ? "tokens" : "samples",
                double(gpt ? rows : ts.global_batch) / t_med, flops_per_step / t_med / 1e9);
  log0(line);
  if (!opts.dump_state.empty()) log0("# state written to " + opts.dump_state);
  return finite ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return partrain::run_app("partrain-ref", argc, argv, [&](partrain::Runtime& rt) {
    CLI::App app{"partrain-ref: the single-process reference training loop", "partrain-ref"};
    CommonOptions opts;
    add_common_options(app, opts);
    if (int rc = parse_command_line(app, argc, argv); rc >= 0) return rc;

    Deck deck;
    models::declare_model_keys(deck);
    models::declare_train_keys(deck);
    load_deck(deck, opts);
    const auto ms = models::read_model_spec(deck);
    const auto ts = models::read_train_spec(deck);
    if (rt.size() != 1)
      input_error("ranks", std::to_string(rt.size()), "partrain-ref is the single-process reference: run 1 rank");
    if (!opts.output.empty())
      input_error("--output", opts.output, "partrain-ref writes no result file (use a mini-app, or --dump-state)");
    if (!opts.dump_state.empty()) io::check_output_path("--dump-state", opts.dump_state, opts.overwrite);
    if (opts.print_deck) {
      log0(deck.to_toml());
      return 0;
    }
    log0("# partrain-ref\n" + deck.table());
    return ms.dtype == "fp64" ? train<double>(deck, opts, ms, ts) : train<float>(deck, opts, ms, ts);
  });
}
