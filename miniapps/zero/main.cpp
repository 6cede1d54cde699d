// partrain-zero: ZeRO stages 0–3 with optimizer offload to host memory or to files, every rank's memory beside the
// ZeRO paper's formula; and --estimate: the per-rank memory of any model, stage, data-parallel degree and offload
// before anything runs.
//   mpiexec -n 2 partrain-zero --input inputs/zero_gpt_small.toml --set zero.stage=3 --output zero.h5
//   partrain-zero --estimate --input inputs/zero_gpt_small.toml --ranks 1,2,4,8
//   partrain-zero --estimate --params 7e9 --ranks 8,64,1024
#include <sstream>

#include "../common/driver.hpp"
#include "partrain/parallel/zero/estimator.hpp"
#include "zero_config.hpp"

namespace {
using namespace partrain;

template <class T>
int train(const app::DriverSetup& su, const zero_app::Config& cfg, coll::MpiCommunicator& world,
          const io::Provenance& prov) {
  std::unique_ptr<models::Model<T>> model;  // layers only: the trainer allocates what its stage keeps
  if (cfg.model.kind == "gpt") model = std::make_unique<models::Gpt<T>>(cfg.model.gpt);
  else model = std::make_unique<models::Mlp<T>>(cfg.model.mlp);
  auto data = models::make_dataset<T>(cfg.model);
  parallel::zero::ZeroTrainer<T> trainer(*model, cfg.model.seed, *data, cfg.train, world, cfg.zero);
  return app::run_driver<T>(su, trainer, prov);
}

std::string mib(double b) {
  char buf[32];
  if (b < 0) return "?";
  std::snprintf(buf, sizeof buf, b >= 1024.0 * 1024 * 1024 * 10 ? "%.1f GiB" : "%.1f MiB",
                b >= 1024.0 * 1024 * 1024 * 10 ? b / 1073741824.0 : b / 1048576.0);
  return buf;
}

/// --estimate: a table over precision × stage × Nd of the per-rank bytes.
int estimate(const zero_app::Config& cfg, double params_override, const std::vector<int>& ranks, bool csv) {
  const auto& ms = cfg.model;
  double psi = params_override > 0 ? params_override : double(zero_app::parameter_count(ms)), largest = 0;
  std::unique_ptr<models::Model<double>> layers;  // shapes only: nothing is allocated
  if (params_override <= 0) {
    if (ms.kind == "gpt") {
      layers = std::make_unique<models::Gpt<double>>(ms.gpt);
      largest = double(12 * ms.gpt.channels * ms.gpt.channels + 13 * ms.gpt.channels);
      largest = std::max(largest, double(ms.gpt.vocab * ms.gpt.channels));
    } else {
      layers = std::make_unique<models::Mlp<double>>(ms.mlp);
      for (std::size_t i = 0; i + 1 < ms.mlp.widths.size(); ++i)
        largest = std::max(largest, double((ms.mlp.widths[i] + 1) * ms.mlp.widths[i + 1]));
    }
  } else {
    largest = std::min(psi, cfg.zero.bucket_mib * 1048576 / 4);  // layer sizes unknown: a bucket's worth
  }
  const double e = ms.dtype == "fp64" ? 8 : 4;
  if (csv) std::printf("precision,stage,nd,params_bytes,grads_bytes,optimizer_bytes,buffers_bytes,activations_bytes,total_bytes\n");
  else
    std::printf("# ZeRO per-rank memory: %.4g parameters%s, optimizer %s, offload %s, batch %lld per step\n", psi,
                params_override > 0 ? " (given)" : (" of " + models::describe(ms)).c_str(), cfg.train.optimizer.kind.c_str(),
                cfg.zero.offload.c_str(), (long long)cfg.train.global_batch);
  for (const char* prec : {"fp32", "mixed"}) {
    if (!csv)
      std::printf("\n# %s%s\n# %5s %6s %12s %12s %12s %12s %12s %12s %12s\n", prec,
                  std::string(prec) == "mixed" ? " (fp16 parameters and gradients, K = 12: fp32 master + Adam)" : "",
                  "stage", "Nd", "params", "grads", "optimizer", "buffers", "states", "activations", "total");
    for (int st = 0; st <= 3; ++st)
      for (int nd : ranks) {
        parallel::zero::EstimateInput in;
        in.psi = psi;
        in.largest_unit = largest;
        in.bucket_elems = cfg.zero.bucket_mib * 1048576 / e;
        in.activation_bytes = layers && cfg.train.global_batch % nd == 0
                                  ? layers->activation_bytes(cfg.train.global_batch / nd) *
                                        (std::string(prec) == "mixed" ? 2.0 / 8.0 : e / 8.0)
                                  : -1.0;
        if (in.activation_bytes > 0 && std::string(prec) == "mixed" && ms.kind == "gpt") {
          // what stays fp32 in a 16-bit GPT (docs/precision.md): the LayerNorms' mean and 1/σ (4 per block and 2 in
          // the head, per row, 2 bytes more each), the per-row losses, and the embedding's fp32 gradient scratch
          const double rows = double(cfg.train.global_batch / nd) * double(ms.gpt.seq_len);
          in.activation_bytes += rows * double(4 * ms.gpt.layers + 2) * 2.0 + rows * 2.0 +
                                 4.0 * double(ms.gpt.vocab) * double(ms.gpt.channels);
        }
        in.stage = st;
        in.nd = nd;
        in.precision = prec;
        in.optimizer = cfg.train.optimizer.kind;
        in.momentum = cfg.train.optimizer.momentum;
        in.offload = cfg.zero.offload;
        in.staging_bytes = cfg.zero.offload_buffer_mib * 1048576;
        in.prefetch = cfg.zero.prefetch;
        const auto m = parallel::zero::estimate(in);
        const double total = m.model_states() + std::max(m.activations, 0.0);
        if (csv)
          std::printf("%s,%d,%d,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f\n", prec, st, nd, m.params, m.grads, m.optimizer, m.buffers,
                      m.activations, total);
        else
          std::printf("  %5d %6d %12s %12s %12s %12s %12s %12s %12s\n", st, nd, mib(m.params).c_str(), mib(m.grads).c_str(),
                      mib(m.optimizer).c_str(), mib(m.buffers).c_str(), mib(m.model_states()).c_str(),
                      mib(m.activations).c_str(), mib(total).c_str());
      }
  }
  if (!csv)
    std::printf("\n# states = params + grads + optimizer + buffers (the gradient buckets and gathered layers in flight, the\n"
                "# offload's staging); activations: one rank's share of the batch (%s).\n",
                layers ? "counted from the layers" : "unknown without a model");
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  return run_app("partrain-zero", argc, argv, [&](Runtime& rt) {
    CLI::App cli{"partrain-zero: ZeRO stages 0-3 with host and file offload, and a memory estimator", "partrain-zero"};
    CommonOptions opts;
    add_common_options(cli, opts);
    bool est = false, csv = false;
    double params = 0;
    std::string ranks_text = "1,2,4,8";
    cli.add_flag("--estimate", est, "print the per-rank memory over stages x data-parallel degrees and exit");
    cli.add_option("--params", params, "--estimate for a model of this many parameters (instead of the deck's)");
    cli.add_option("--ranks", ranks_text, "--estimate: data-parallel degrees, comma-separated")->capture_default_str();
    cli.add_flag("--csv", csv, "--estimate: comma-separated output (bytes)");
    if (int rc = parse_command_line(cli, argc, argv, &opts); rc >= 0) return rc;
    Deck deck;
    zero_app::declare_keys(deck);
    load_deck(deck, opts);
    if (opts.print_deck) {
      log0(deck.to_toml());
      return 0;
    }
    if (est) {
      std::vector<int> ranks;
      std::stringstream ss(ranks_text);
      for (std::string t; std::getline(ss, t, ',');) {
        int r = 0;
        try {
          r = std::stoi(t);
        } catch (const std::exception&) {
          r = 0;
        }
        if (r < 1) input_error("--ranks", ranks_text, "must be a comma-separated list of positive integers");
        ranks.push_back(r);
      }
      if (params < 0) input_error("--params", std::to_string(params), "must be positive");
      const auto cfg = zero_app::read_config(deck, 1);
      rt.inputs_done();
      return rt.rank() == 0 ? estimate(cfg, params, ranks, csv) : 0;
    }
    const auto cfg = zero_app::read_config(deck, rt.size());
    app::check_outputs(opts);
    auto controls = app::check_run_controls(opts, rt.size(), true);
    rt.check_inputs();
    controls.resume_path = app::find_resume(opts, cfg.model, cfg.train);  // collective
    rt.inputs_done();
    log0("# partrain-zero, " + std::to_string(rt.size()) + " ranks\n" + deck.table());
    const auto prov = io::collect_provenance(MPI_COMM_WORLD, argc, argv);
    coll::MpiCommunicator world(MPI_COMM_WORLD);
    app::DriverSetup su;
    su.app = "partrain-zero";
    su.strategy = "zero";
    su.deck = &deck;
    su.opts = &opts;
    su.controls = &controls;
    su.model = cfg.model;
    su.train = cfg.train;
    su.dp = rt.size();
    su.pure_comm_reps = cfg.pure_comm_reps;
    if (cfg.train.precision == "bf16") return train<bf16>(su, cfg, world, prov);
    if (cfg.train.precision == "fp16") return train<fp16>(su, cfg, world, prov);
    return cfg.model.dtype == "fp64" ? train<double>(su, cfg, world, prov) : train<float>(su, cfg, world, prov);
  });
}
