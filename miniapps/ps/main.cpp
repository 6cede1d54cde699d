// partrain-ps: a parameter server — S server ranks hold shards of the parameters and run the optimizer, W worker
// ranks pull, compute and push — with synchronous (bsp), asynchronous (asp), bounded-staleness (ssp),
// half-synchronous and local-SGD updates, a measured staleness distribution, and the three recoveries from
// failure: restart from a checkpoint (--resume), membership update (a silent worker is removed), backup promotion;
// and, with ps.hybrid, the sparse-embedding server: embedding rows on the servers, dense layers allreduced.
//   mpiexec -n 3 partrain-ps --input inputs/ps_mlp_small.toml --set ps.mode=asp --output ps.h5
//   mpiexec -n 4 partrain-ps --input inputs/ps_mlp_small.toml --set ps.servers=2 --set ps.backup=true
//     --inject stall:rank=0:step=5   (server 0 goes silent at clock 5; its backup takes over)
#include <sys/stat.h>

#include "../common/driver.hpp"
#include "partrain/io/checkpoint.hpp"
#include "partrain/parallel/ps/hybrid_trainer.hpp"
#include "partrain/parallel/ps/ps_trainer.hpp"
#include "ps_config.hpp"

namespace {
using namespace partrain;

template <class T>
int train(const app::DriverSetup& su, const ps_app::Config& cfg, const std::string& config_toml,
          coll::MpiCommunicator& world, const io::Provenance& prov) {
  auto data = models::make_dataset<T>(cfg.model);
  if constexpr (!is_half_v<T>) {
    if (cfg.ps.hybrid) {  // sparse rows on the servers, the dense layers allreduced among the workers
      parallel::DpOptions dp;
      dp.bucket_mib = 1.0;
      parallel::ps::HybridTrainer<T> trainer(cfg.model, *data, cfg.train, world, cfg.ps.servers, dp);
      return app::run_driver<T>(su, trainer, prov);
    }
  }
  auto model = models::make_layers<T>(cfg.model);  // workers allocate it whole, servers its declarations
  parallel::ps::PsTrainer<T> trainer(*model, cfg.model.seed, *data, cfg.train, world, cfg.ps,
                                     models::describe(cfg.model), config_toml);
  return app::run_driver<T>(su, trainer, prov);
}
}  // namespace

int main(int argc, char** argv) {
  return run_app("partrain-ps", argc, argv, [&](Runtime& rt) {
    CLI::App cli{"partrain-ps: parameter server with bsp, asp, ssp, half_sync and local updates, and failure recovery",
                 "partrain-ps"};
    CommonOptions opts;
    add_common_options(cli, opts);
    if (int rc = parse_command_line(cli, argc, argv, &opts); rc >= 0) return rc;
    Deck deck;
    ps_app::declare_keys(deck);
    load_deck(deck, opts);
    // The shared checkpoint flags set the servers' checkpoint keys (the same format; the servers write it).
    const std::string ckdir = opts.resume && !opts.resume_dir.empty() ? opts.resume_dir : opts.checkpoint_dir;
    if (!ckdir.empty()) deck.apply_override("ps.checkpoint_dir=\"" + ckdir + "\"");
    if (opts.checkpoint_every > 0) deck.apply_override("ps.checkpoint_every=" + std::to_string(opts.checkpoint_every));
    if (opts.keep != 2) deck.apply_override("ps.checkpoint_keep=" + std::to_string(opts.keep));
    if (opts.print_deck) {
      log0(deck.to_toml());
      return 0;
    }
    auto cfg = ps_app::read_config(deck, rt.size(), opts.inject, opts.resume, opts.overwrite, !opts.dump_state.empty());
    app::check_outputs(opts);
    app::RunControls controls;  // the faults and the checkpoints are the servers' (cfg.ps); the profile is the driver's
    if (!opts.profile.empty()) controls.profile = std::make_shared<perf::MachineProfile>(perf::read_profile("--profile", opts.profile));
    coll::set_watchdog(opts.timeout_s);
    rt.check_inputs();
    if (opts.resume) cfg.ps.resume_path = ps_app::find_checkpoint(cfg);  // collective; the same verdict on every rank
    rt.inputs_done();
    if (rt.rank() == 0 && !cfg.ps.checkpoint_dir.empty()) {
      mkdir(cfg.ps.checkpoint_dir.c_str(), 0777);  // the parent exists or the first checkpoint says so
      if (!opts.resume && opts.overwrite) io::prune_checkpoints(cfg.ps.checkpoint_dir, 0);
    }
    log0("# partrain-ps, " + std::to_string(rt.size()) + " ranks\n" + deck.table());
    if (!cfg.ps.faults.empty()) log0("# fault injection: " + cfg.ps.faults.describe());
    const auto prov = io::collect_provenance(MPI_COMM_WORLD, argc, argv);
    coll::MpiCommunicator world(MPI_COMM_WORLD);
    app::DriverSetup su;
    su.app = "partrain-ps";
    su.strategy = "ps";
    su.deck = &deck;
    su.opts = &opts;
    su.controls = &controls;
    su.model = cfg.model;
    su.train = cfg.train;
    su.dp = rt.size() - cfg.ps.servers - (cfg.ps.scheduler ? 1 : 0);
    const std::string toml = deck.to_toml();
    if (cfg.train.precision == "bf16") return train<bf16>(su, cfg, toml, world, prov);
    if (cfg.train.precision == "fp16") return train<fp16>(su, cfg, toml, world, prov);
    return cfg.model.dtype == "fp64" ? train<double>(su, cfg, toml, world, prov)
                                     : train<float>(su, cfg, toml, world, prov);
  });
}
