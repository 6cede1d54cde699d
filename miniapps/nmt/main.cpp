// partrain-nmt: the hybrid Google-Translate-style NMT — each replica's LSTM layers spread over k ranks and run as a
// chunked wavefront, the softmax and the target embedding sharded by vocabulary, replicas combined synchronously —
// checked against the serial reference (partrain-ref with model.kind = "nmt").
//   mpiexec -n 2 partrain-nmt --input inputs/nmt_small.toml --set nmt.model_parallel=2 --output nmt.h5
//   mpiexec -n 4 partrain-nmt --input inputs/nmt_small.toml --set nmt.model_parallel=2     # 2 replicas x 2
//   mpiexec -n 5 partrain-nmt -i inputs/nmt_small.toml --set nmt.update=async --set nmt.model_parallel=2  # 1 server
#include <sys/stat.h>

#include "../common/driver.hpp"
#include "nmt_config.hpp"

namespace {
using namespace partrain;

template <class T>
int train(const app::DriverSetup& su, const nmt_app::Config& cfg, coll::MpiCommunicator& world,
          const io::Provenance& prov) {
  auto data = models::make_dataset<T>(cfg.model);
  if (cfg.update == "async") {
    parallel::nmt::NmtAsyncTrainer<T> trainer(cfg.model.nmt, cfg.model.seed, *data, cfg.train, world, cfg.nmt,
                                              cfg.async, models::describe(cfg.model), su.deck->to_toml());
    return app::run_driver<T>(su, trainer, prov);
  }
  parallel::nmt::NmtTrainer<T> trainer(cfg.model.nmt, cfg.model.seed, *data, cfg.train, world, cfg.nmt);
  return app::run_driver<T>(su, trainer, prov);
}
}  // namespace

int main(int argc, char** argv) {
  return run_app("partrain-nmt", argc, argv, [&](Runtime& rt) {
    CLI::App cli{"partrain-nmt: GNMT-style hybrid — layer-wise model parallelism with a wavefront, vocabulary-sharded "
                 "softmax, replicas",
                 "partrain-nmt"};
    CommonOptions opts;
    add_common_options(cli, opts);
    if (int rc = parse_command_line(cli, argc, argv, &opts); rc >= 0) return rc;
    Deck deck;
    nmt_app::declare_keys(deck);
    load_deck(deck, opts);
    if (opts.print_deck) {
      log0(deck.to_toml());
      return 0;
    }
    auto cfg = nmt_app::read_config(deck, rt.size(), !opts.dump_state.empty());
    app::check_outputs(opts);
    auto controls = app::check_run_controls(opts, rt.size(), true, "");
    const bool async = cfg.update == "async";
    if (async) {
      // Faults go to the ranks partrain-ps runs: a server, or a replica's first rank (its worker), renumbered as
      // the servers' and leaders' communicator numbers them; the other ranks of a replica follow their leader.
      const int S = cfg.async.servers, k = cfg.nmt.model_parallel;
      std::vector<int> ps_rank(std::size_t(rt.size()), -1);
      for (int w = 0; w < rt.size(); ++w)
        if (w < S || (w - S) % k == 0) ps_rank[std::size_t(w)] = w < S ? w : S + (w - S) / k;
      for (const auto& f : controls.faults.faults())
        if (ps_rank[std::size_t(f.rank)] < 0)
          input_error("--inject", controls.faults.describe(),
                      "rank " + std::to_string(f.rank) + " follows its replica's first rank " +
                          std::to_string(f.rank - (f.rank - S) % k) +
                          "; with nmt.update = \"async\" faults go to a server or a replica's first rank");
      cfg.async.faults = controls.faults.renumbered(ps_rank);
    }
    rt.check_inputs();
    // collective; the asynchronous replicas resume from their servers' (partrain-ps's) checkpoint
    controls.resume_path = app::find_resume(opts, cfg.model, cfg.train, async ? "asp" : "");
    rt.inputs_done();
    if (async) {  // the servers write the checkpoints: the shared flags become their options
      cfg.async.checkpoint_every = int(opts.checkpoint_every);
      cfg.async.checkpoint_dir = opts.checkpoint_dir.empty() ? opts.resume_dir : opts.checkpoint_dir;
      cfg.async.checkpoint_keep = opts.keep;
      cfg.async.overwrite = opts.overwrite;
      cfg.async.resume_path = controls.resume_path;
      if (rt.rank() == 0 && !opts.checkpoint_dir.empty()) {
        mkdir(opts.checkpoint_dir.c_str(), 0777);
        if (!opts.resume && opts.overwrite) io::prune_checkpoints(opts.checkpoint_dir, 0);
      }
    }
    log0("# partrain-nmt, " + std::to_string(rt.size()) + " ranks\n" + deck.table());
    const auto prov = io::collect_provenance(MPI_COMM_WORLD, argc, argv);
    coll::MpiCommunicator world(MPI_COMM_WORLD);
    app::DriverSetup su;
    su.app = "partrain-nmt";
    su.strategy = "nmt";
    su.deck = &deck;
    su.opts = &opts;
    su.controls = &controls;
    su.model = cfg.model;
    su.train = cfg.train;
    su.dp = cfg.nmt.replicas;
    su.pp = cfg.nmt.model_parallel;
    if (cfg.update == "async") su.attrs.push_back({"nmt_servers", std::to_string(cfg.async.servers)});
    if (cfg.train.precision == "bf16") return train<bf16>(su, cfg, world, prov);
    if (cfg.train.precision == "fp16") return train<fp16>(su, cfg, world, prov);
    return cfg.model.dtype == "fp64" ? train<double>(su, cfg, world, prov) : train<float>(su, cfg, world, prov);
  });
}
