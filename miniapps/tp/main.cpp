// partrain-tp: Megatron-style tensor parallelism of the reference GPT (t ranks per replica), combined with data
// parallelism over ranks / t replicas, optionally with sequence parallelism.
//   mpiexec -n 2 partrain-tp --input inputs/tp_gpt_small.toml [--set tp.sequence_parallel=true] --output tp.h5
#include "../common/run_training.hpp"
#include "partrain/collectives/process_grid.hpp"
#include "partrain/core/cli.hpp"
#include "partrain/core/log.hpp"
#include "partrain/core/runtime.hpp"
#include "partrain/io/h5.hpp"
#include "tp_config.hpp"

int main(int argc, char** argv) {
  using namespace partrain;
  return run_app("partrain-tp", argc, argv, [&](Runtime& rt) {
    CLI::App app{"partrain-tp: tensor-parallel (Megatron) GPT training, with data parallelism over replicas",
                 "partrain-tp"};
    CommonOptions opts;
    add_common_options(app, opts);
    if (int rc = parse_command_line(app, argc, argv); rc >= 0) return rc;
    Deck deck;
    tp_app::declare_keys(deck);
    load_deck(deck, opts);
    const auto cfg = tp_app::read_config(deck, rt.size());
    if (!opts.output.empty()) io::check_output_path("--output", opts.output, opts.overwrite);
    if (!opts.dump_state.empty()) io::check_output_path("--dump-state", opts.dump_state, opts.overwrite);
    if (opts.print_deck) {
      log0(deck.to_toml());
      return 0;
    }
    log0("# partrain-tp, " + std::to_string(rt.size()) + " ranks\n" + deck.table());
    const auto prov = io::collect_provenance(MPI_COMM_WORLD, argc, argv);
    coll::ProcessGrid grid(MPI_COMM_WORLD, GridShape{1, rt.size() / cfg.degree, cfg.degree});
    parallel::TpContext tp{&grid.tp(), cfg.algo, cfg.sequence_parallel};
    app::RunSetup su;
    su.app = "partrain-tp";
    su.strategy = cfg.sequence_parallel ? "tp+sp" : "tp";
    su.deck = &deck;
    su.opts = &opts;
    su.model = cfg.base.model;
    su.train = cfg.base.train;
    su.dp = cfg.base.dp;
    su.pure_comm_reps = cfg.base.pure_comm_reps;
    su.world = &grid.world();
    su.dp_comm = &grid.dp();
    su.tp = &tp;
    su.attrs = {{"layout", grid.grid().describe() + " (tp fastest)"},
                {"sequence_parallel", cfg.sequence_parallel ? "true" : "false"},
                {"tp_algorithm", coll::name(cfg.algo)}};
    if (cfg.base.model.dtype == "fp64") {
      parallel::TpGpt<double> model(cfg.base.model.gpt, tp);
      model.build(cfg.base.model.seed);
      return app::run_training<double>(su, model, prov);
    }
    parallel::TpGpt<float> model(cfg.base.model.gpt, tp);
    model.build(cfg.base.model.seed);
    return app::run_training<float>(su, model, prov);
  });
}
