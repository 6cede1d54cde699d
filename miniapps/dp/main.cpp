// partrain-dp: data-parallel training of a reference model with bucketed gradient allreduce overlapped with
// the backward pass. Prints one line per step (rank 0), a self-check and a figure of merit, and writes the
// HDF5 result file.
//   mpiexec -n 2 partrain-dp --input inputs/dp_gpt_small.toml --output dp.h5
#include "../common/driver.hpp"
#include "dp_config.hpp"

namespace {
using namespace partrain;

template <class T>
int train(const app::DriverSetup& su, const dp_app::Config& cfg, coll::MpiCommunicator& world,
          const io::Provenance& prov) {
  auto model = models::make_model<T>(cfg.model);
  auto data = models::make_dataset<T>(cfg.model);
  parallel::DataParallelTrainer<T> trainer(*model, *data, cfg.train, world, cfg.dp, nullptr, cfg.model.seed);
  return app::run_driver<T>(su, trainer, prov);
}
}  // namespace

int main(int argc, char** argv) {
  return run_app("partrain-dp", argc, argv, [&](Runtime& rt) {
    CLI::App cli{"partrain-dp: data-parallel training with bucketed, overlapped gradient allreduce", "partrain-dp"};
    CommonOptions opts;
    add_common_options(cli, opts);
    if (int rc = parse_command_line(cli, argc, argv, &opts); rc >= 0) return rc;
    Deck deck;
    dp_app::declare_keys(deck);
    load_deck(deck, opts);
    if (opts.print_deck) {
      log0(deck.to_toml());
      return 0;
    }
    const auto cfg = dp_app::read_config(deck, rt.size(), false);  // uneven shares allowed
    app::check_outputs(opts);
    auto controls = app::check_run_controls(opts, rt.size(), true);
    rt.check_inputs();
    controls.resume_path = app::find_resume(opts, cfg.model, cfg.train);  // collective
    rt.inputs_done();
    log0("# partrain-dp, " + std::to_string(rt.size()) + " ranks\n" + deck.table());
    const auto prov = io::collect_provenance(MPI_COMM_WORLD, argc, argv);
    coll::MpiCommunicator world(MPI_COMM_WORLD);
    app::DriverSetup su;
    su.app = "partrain-dp";
    su.strategy = "dp";
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
