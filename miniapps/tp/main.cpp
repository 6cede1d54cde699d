// partrain-tp: Megatron-style tensor parallelism of the reference GPT (t ranks per replica), combined with data
// parallelism over ranks / (t·cp) replicas, optionally with sequence parallelism and context parallelism (cp ranks
// splitting every sequence: ring or Ulysses attention, docs/cp.md).
//   mpiexec -n 2 partrain-tp --input inputs/tp_gpt_small.toml [--set tp.sequence_parallel=true] --output tp.h5
//   mpiexec -n 4 partrain-tp --input inputs/cp_gpt_long.toml --set cp.degree=4 --set tp.degree=1 --output cp.h5
#include "../common/driver.hpp"
#include "partrain/collectives/process_grid.hpp"
#include "partrain/parallel/tp/gpt.hpp"
#include "tp_config.hpp"

namespace {
using namespace partrain;

template <class T>
int train(const app::DriverSetup& su, const tp_app::Config& cfg, coll::ProcessGrid& grid, parallel::TpContext& tp,
          const io::Provenance& prov) {
  parallel::TpGpt<T> model(cfg.base.model.gpt, tp);
  model.build(cfg.base.model.seed);
  auto data = models::make_dataset<T>(cfg.base.model);
  parallel::DataParallelTrainer<T> trainer(model, *data, cfg.base.train, grid.dp_cp(), cfg.base.dp, &tp, cfg.base.model.seed);
  return app::run_driver<T>(su, trainer, prov);
}
}  // namespace

int main(int argc, char** argv) {
  return run_app("partrain-tp", argc, argv, [&](Runtime& rt) {
    CLI::App cli{"partrain-tp: tensor-parallel (Megatron) GPT training, with data parallelism over replicas",
                 "partrain-tp"};
    CommonOptions opts;
    add_common_options(cli, opts);
    if (int rc = parse_command_line(cli, argc, argv, &opts); rc >= 0) return rc;
    Deck deck;
    tp_app::declare_keys(deck);
    load_deck(deck, opts);
    if (opts.print_deck) {
      log0(deck.to_toml());
      return 0;
    }
    const auto cfg = tp_app::read_config(deck, rt.size());
    app::check_outputs(opts);
    auto controls = app::check_run_controls(opts, rt.size(), true);
    rt.check_inputs();
    coll::ProcessGrid grid(MPI_COMM_WORLD, GridShape{1, rt.size() / (cfg.degree * cfg.cp), cfg.degree, cfg.cp});
    if (cfg.algo == coll::Algo::Shm && !grid.tp().single_node())
      input_error("tp.algorithm", "\"shm\"", "needs every tensor-parallel group on one node");
    controls.resume_path = app::find_resume(opts, cfg.base.model, cfg.base.train);  // collective
    rt.inputs_done();
    log0("# partrain-tp, " + std::to_string(rt.size()) + " ranks\n" + deck.table());
    const auto prov = io::collect_provenance(MPI_COMM_WORLD, argc, argv);
    parallel::CpContext cp;
    cp.comm = &grid.cp();
    cp.kind = cfg.cp_kind;
    cp.algo = cfg.cp_algo;
    cp.layout = parallel::CpLayout(cfg.base.model.gpt.seq_len, cfg.cp, grid.cp().rank(), cfg.cp_kind == parallel::CpKind::Ring);
    parallel::TpContext tp{&grid.tp(), cfg.algo, cfg.sequence_parallel};
    tp.cp = &cp;
    app::DriverSetup su;
    su.app = "partrain-tp";
    su.strategy = std::string(cfg.sequence_parallel ? "tp+sp" : "tp") + (cfg.cp > 1 ? "+cp" : "");
    su.deck = &deck;
    su.opts = &opts;
    su.controls = &controls;
    su.model = cfg.base.model;
    su.train = cfg.base.train;
    su.dp = rt.size() / (cfg.degree * cfg.cp);
    su.tp = cfg.degree;
    su.pure_comm_reps = cfg.base.pure_comm_reps;
    su.attrs = {{"layout", grid.grid().describe() + " (tp fastest)"},
                {"sequence_parallel", cfg.sequence_parallel ? "true" : "false"},
                {"tp_algorithm", coll::name(cfg.algo)},
                {"cp_degree", std::to_string(cfg.cp)}};  // the trainer adds cp_kind when cp > 1
    if (cfg.base.train.precision == "bf16") return train<bf16>(su, cfg, grid, tp, prov);
    if (cfg.base.train.precision == "fp16") return train<fp16>(su, cfg, grid, tp, prov);
    return cfg.base.model.dtype == "fp64" ? train<double>(su, cfg, grid, tp, prov) : train<float>(su, cfg, grid, tp, prov);
  });
}
