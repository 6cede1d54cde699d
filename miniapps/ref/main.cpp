// partrain-ref: the single-process reference. Trains a reference model (GPT or MLP) on its synthetic task through
// the same driver as every strategy: one line per step, a summary, a self-check, a figure-of-merit line, and the
// same HDF5 result file (strategy "serial": the baseline of every speedup). Every strategy's mini-app is checked
// against what this computes.
//   partrain-ref --input inputs/ref_gpt_small.toml [--set train.steps=50] [--dump-state state.h5] [--output ref.h5]
#include "../common/driver.hpp"
#include "partrain/parallel/serial_trainer.hpp"

namespace {
using namespace partrain;

template <class T>
int train(const app::DriverSetup& su, const io::Provenance& prov) {
  auto model = models::make_model<T>(su.model);
  auto data = models::make_dataset<T>(su.model);
  parallel::SerialTrainer<T> trainer(*model, *data, su.train, su.model.seed);
  return app::run_driver<T>(su, trainer, prov);
}
}  // namespace

int main(int argc, char** argv) {
  return run_app("partrain-ref", argc, argv, [&](Runtime& rt) {
    CLI::App cli{"partrain-ref: the single-process reference training loop", "partrain-ref"};
    CommonOptions opts;
    add_common_options(cli, opts);
    if (int rc = parse_command_line(cli, argc, argv, &opts); rc >= 0) return rc;
    Deck deck;
    models::declare_model_keys(deck);
    models::declare_train_keys(deck);
    load_deck(deck, opts);
    if (opts.print_deck) {
      log0(deck.to_toml());
      return 0;
    }
    app::DriverSetup su;
    su.model = models::read_model_spec(deck);
    su.train = models::read_train_spec(deck);
    if (rt.size() != 1)
      input_error("ranks", std::to_string(rt.size()), "partrain-ref is the single-process reference: run 1 rank");
    app::check_outputs(opts);
    auto controls = app::check_run_controls(opts, rt.size(), true);
    rt.check_inputs();
    controls.resume_path = app::find_resume(opts, su.model, su.train);  // collective
    rt.inputs_done();
    log0("# partrain-ref\n" + deck.table());
    const auto prov = io::collect_provenance(MPI_COMM_WORLD, argc, argv);
    su.app = "partrain-ref";
    su.strategy = "serial";
    su.deck = &deck;
    su.opts = &opts;
    su.controls = &controls;
    if (su.train.precision == "bf16") return train<bf16>(su, prov);
    if (su.train.precision == "fp16") return train<fp16>(su, prov);
    return su.model.dtype == "fp64" ? train<double>(su, prov) : train<float>(su, prov);
  });
}
