// partrain-dp: data-parallel training of a reference model with bucketed gradient allreduce overlapped with
// the backward pass. Prints one line per step (rank 0), a self-check and a figure of merit, and writes the
// HDF5 result file.
//   mpiexec -n 2 partrain-dp --input inputs/dp_gpt_small.toml --output dp.h5
#include <cmath>
#include <cstdio>

#include "dp_config.hpp"
#include "partrain/collectives/wait.hpp"
#include "partrain/core/cli.hpp"
#include "partrain/core/log.hpp"
#include "partrain/core/runtime.hpp"
#include "partrain/io/h5.hpp"
#include "partrain/io/result_writer.hpp"
#include "partrain/io/state_dump.hpp"
#include "../common/run_training.hpp"

int main(int argc, char** argv) {
  using namespace partrain;
  return run_app("partrain-dp", argc, argv, [&](Runtime& rt) {
    CLI::App app{"partrain-dp: data-parallel training with bucketed, overlapped gradient allreduce", "partrain-dp"};
    CommonOptions opts;
    add_common_options(app, opts);
    if (int rc = parse_command_line(app, argc, argv); rc >= 0) return rc;
    Deck deck;
    dp_app::declare_keys(deck);
    load_deck(deck, opts);
    const auto cfg = dp_app::read_config(deck, rt.size());
    if (!opts.output.empty()) io::check_output_path("--output", opts.output, opts.overwrite);
    if (!opts.dump_state.empty()) io::check_output_path("--dump-state", opts.dump_state, opts.overwrite);
    if (opts.print_deck) {
      log0(deck.to_toml());
      return 0;
    }
    log0("# partrain-dp, " + std::to_string(rt.size()) + " ranks\n" + deck.table());
    const auto prov = io::collect_provenance(MPI_COMM_WORLD, argc, argv);
    coll::MpiCommunicator world(MPI_COMM_WORLD);
    app::RunSetup su;
    su.app = "partrain-dp";
    su.strategy = "dp";
    su.deck = &deck;
    su.opts = &opts;
    su.model = cfg.model;
    su.train = cfg.train;
    su.dp = cfg.dp;
    su.pure_comm_reps = cfg.pure_comm_reps;
    su.world = &world;
    su.dp_comm = &world;
    if (cfg.model.dtype == "fp64") {
      auto model = models::make_model<double>(cfg.model);
      return app::run_training<double>(su, *model, prov);
    }
    auto model = models::make_model<float>(cfg.model);
    return app::run_training<float>(su, *model, prov);
  });
}
