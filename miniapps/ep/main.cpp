// partrain-ep: expert parallelism of the mixture-of-experts GPT inside data parallelism (docs/ep.md): ep.degree
// ranks share each MoE block's experts, tokens travel to them and back by all-to-alls of variable counts.
//   mpiexec -n 4 partrain-ep --input inputs/ep_gpt_moe.toml [--set ep.degree=2] --output ep.h5
#include "../common/driver.hpp"
#include "ep_config.hpp"

namespace {
using namespace partrain;

template <class T>
int train(const app::DriverSetup& su, const ep_app::Config& cfg, coll::MpiCommunicator& world,
          const parallel::EpGroups& groups, const io::Provenance& prov) {
  auto gpt = cfg.base.model.gpt;
  const std::int64_t local = gpt.moe.experts / cfg.degree;
  gpt.expert_first = std::int64_t(groups.ep->rank()) * local;
  gpt.expert_count = local;
  models::Gpt<T> model(gpt);
  model.build(cfg.base.model.seed);
  auto data = models::make_dataset<T>(cfg.base.model);
  parallel::DataParallelTrainer<T> trainer(model, *data, cfg.base.train, world, cfg.base.dp, nullptr, cfg.base.model.seed,
                                           &groups);
  return app::run_driver<T>(su, trainer, prov);
}
}  // namespace

int main(int argc, char** argv) {
  return run_app("partrain-ep", argc, argv, [&](Runtime& rt) {
    CLI::App cli{"partrain-ep: expert-parallel mixture-of-experts GPT training inside data parallelism", "partrain-ep"};
    CommonOptions opts;
    add_common_options(cli, opts);
    if (int rc = parse_command_line(cli, argc, argv, &opts); rc >= 0) return rc;
    Deck deck;
    ep_app::declare_keys(deck, rt.size());
    load_deck(deck, opts);
    if (opts.print_deck) {
      log0(deck.to_toml());
      return 0;
    }
    const auto cfg = ep_app::read_config(deck, rt.size());
    app::check_outputs(opts);
    auto controls = app::check_run_controls(opts, rt.size(), true);
    rt.check_inputs();
    controls.resume_path = app::find_resume(opts, cfg.base.model, cfg.base.train);  // collective
    rt.inputs_done();
    log0("# partrain-ep, " + std::to_string(rt.size()) + " ranks\n" + deck.table());
    const auto prov = io::collect_provenance(MPI_COMM_WORLD, argc, argv);
    coll::MpiCommunicator world(MPI_COMM_WORLD);
    const parallel::ExpertGroups experts(world, cfg.degree, cfg.a2a_algo);
    app::DriverSetup su;
    su.app = "partrain-ep";
    su.strategy = "ep";
    su.deck = &deck;
    su.opts = &opts;
    su.controls = &controls;
    su.model = cfg.base.model;
    su.train = cfg.base.train;
    su.dp = rt.size();
    su.pure_comm_reps = cfg.base.pure_comm_reps;
    su.attrs = {{"layout", "ep " + std::to_string(cfg.degree) + " x edp " + std::to_string(rt.size() / cfg.degree) +
                               " (ep fastest)"},
                {"ep_degree", std::to_string(cfg.degree)}};
    const auto& g = experts.groups();
    if (cfg.base.train.precision == "bf16") return train<bf16>(su, cfg, world, g, prov);
    if (cfg.base.train.precision == "fp16") return train<fp16>(su, cfg, world, g, prov);
    return cfg.base.model.dtype == "fp64" ? train<double>(su, cfg, world, g, prov) : train<float>(su, cfg, world, g, prov);
  });
}
