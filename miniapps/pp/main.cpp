// partrain-pp: pipeline parallelism of a reference model (GPT or MLP) on the 3D grid — p stages, each a range of
// the model's layers, with tensor parallelism inside a stage and data parallelism across stage replicas — under a
// schedule that is data (GPipe, 1F1B, interleaved 1F1B, zero-bubble ZB-H1).
//   mpiexec -n 2 partrain-pp --input inputs/pp_gpt_small.toml [--set pp.schedule=zb] --output pp.h5
#include "../common/driver.hpp"
#include "partrain/collectives/process_grid.hpp"
#include "partrain/parallel/tp/gpt.hpp"
#include "pp_config.hpp"

namespace {
using namespace partrain;

template <class T>
int train(const app::DriverSetup& su, const pp_app::Config& cfg, coll::ProcessGrid& grid, parallel::TpContext& tp,
          const parallel::EpGroups* ep, const io::Provenance& prov) {
  const auto& ms = cfg.base.model;
  parallel::TpContext* tpc = cfg.tp_degree > 1 ? &tp : nullptr;
  auto gpt = ms.gpt;
  if (ep) {  // this rank's experts: its place in the expert group
    gpt.expert_count = gpt.moe.experts / ep->ep->size();
    gpt.expert_first = std::int64_t(ep->ep->rank()) * gpt.expert_count;
  }
  auto make = [&]() -> std::unique_ptr<models::Model<T>> {
    if (tpc) return std::make_unique<parallel::TpGpt<T>>(ms.gpt, tp);
    if (ms.kind == "gpt") return std::make_unique<models::Gpt<T>>(gpt);
    return std::make_unique<models::Mlp<T>>(ms.mlp);
  };
  auto data = models::make_dataset<T>(ms);
  parallel::pipeline::PipelineTrainer<T> trainer(make, ms.seed, *data, cfg.base.train, grid, tpc, cfg.pipeline, ep);
  return app::run_driver<T>(su, trainer, prov);
}
}  // namespace

int main(int argc, char** argv) {
  return run_app("partrain-pp", argc, argv, [&](Runtime& rt) {
    CLI::App cli{"partrain-pp: pipeline-parallel training (GPipe, 1F1B, interleaved, zero-bubble) on the 3D grid",
                 "partrain-pp"};
    CommonOptions opts;
    add_common_options(cli, opts);
    if (int rc = parse_command_line(cli, argc, argv, &opts); rc >= 0) return rc;
    Deck deck;
    pp_app::declare_keys(deck);
    load_deck(deck, opts);
    if (opts.print_deck) {
      log0(deck.to_toml());
      return 0;
    }
    const auto cfg = pp_app::read_config(deck, rt.size());
    app::check_outputs(opts);
    auto controls = app::check_run_controls(opts, rt.size(), true);
    rt.check_inputs();
    const auto& sch = cfg.pipeline.schedule;
    coll::ProcessGrid grid(MPI_COMM_WORLD, GridShape{sch.p, cfg.dp_degree, cfg.tp_degree});
    if (cfg.tp_algo == coll::Algo::Shm && cfg.tp_degree > 1 && !grid.tp().single_node())
      input_error("tp.algorithm", "\"shm\"", "needs every tensor-parallel group on one node");
    controls.resume_path = app::find_resume(opts, cfg.base.model, cfg.base.train);  // collective
    rt.inputs_done();
    log0("# partrain-pp, " + std::to_string(rt.size()) + " ranks\n" + deck.table());
    const auto prov = io::collect_provenance(MPI_COMM_WORLD, argc, argv);
    parallel::TpContext tp{&grid.tp(), cfg.tp_algo, cfg.sequence_parallel};
    app::DriverSetup su;
    su.app = "partrain-pp";
    su.strategy = "pp";
    su.deck = &deck;
    su.opts = &opts;
    su.controls = &controls;
    su.model = cfg.base.model;
    su.train = cfg.base.train;
    su.pp = sch.p;
    su.dp = cfg.dp_degree;
    su.tp = cfg.tp_degree;
    su.pure_comm_reps = cfg.base.pure_comm_reps;
    su.attrs = {{"layout", grid.grid().describe() + " (pp outermost, tp fastest)"},
                {"microbatches", std::to_string(sch.m)},
                {"chunks", std::to_string(sch.v)},
                {"sequence_parallel", cfg.sequence_parallel ? "true" : "false"},
                {"tp_algorithm", coll::name(cfg.tp_algo)}};
    // expert parallelism: groups of ep.degree consecutive replicas of each stage
    std::unique_ptr<parallel::ExpertGroups> experts;
    if (cfg.ep_degree > 1) {
      experts = std::make_unique<parallel::ExpertGroups>(grid.dp(), cfg.ep_degree, cfg.ep_algo);
      su.attrs.push_back({"ep_degree", std::to_string(cfg.ep_degree)});
    }
    const parallel::EpGroups* ep = experts ? &experts->groups() : nullptr;
    if (cfg.base.train.precision == "bf16") return train<bf16>(su, cfg, grid, tp, ep, prov);
    if (cfg.base.train.precision == "fp16") return train<fp16>(su, cfg, grid, tp, ep, prov);
    return cfg.base.model.dtype == "fp64" ? train<double>(su, cfg, grid, tp, ep, prov)
                                          : train<float>(su, cfg, grid, tp, ep, prov);
  });
}
