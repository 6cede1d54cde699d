#include "partrain/core/cli.hpp"

#include <cstdio>
#include <cstdlib>

#include "partrain/core/error.hpp"
#include "partrain/core/log.hpp"
#include "partrain/core/runtime.hpp"

namespace partrain {

void add_common_options(CLI::App& app, CommonOptions& opts) {
  app.add_option("-i,--input", opts.input, "TOML input deck");
  app.add_option("--set", opts.sets, "override a deck key: --set train.steps=50 (repeatable)")->type_name("KEY=VALUE");
  app.add_option("-o,--output", opts.output, "HDF5 result file to write");
  app.add_option("--dump-state", opts.dump_state,
                 "write loss, batch, parameters and gradients after the last backward to this HDF5 file");
  app.add_flag("--overwrite", opts.overwrite, "replace existing output files");
  app.add_flag("--print-deck", opts.print_deck, "print the resolved deck as TOML and exit");
  app.add_option("--checkpoint-dir", opts.checkpoint_dir, "directory of the checkpoints (ckpt-<step>.h5)")->type_name("DIR");
  app.add_option("--checkpoint-every", opts.checkpoint_every, "write a checkpoint every N steps (0: never)")
      ->type_name("N");
  app.add_option("--keep", opts.keep, "newest checkpoints kept (default 2)")->type_name("K");
  opts.resume_option = app.add_option("--resume", opts.resume_dir,
                                      "continue from the newest valid checkpoint of DIR (default: --checkpoint-dir)")
                           ->expected(0, 1)
                           ->type_name("[DIR]");
  app.add_option("--inject", opts.inject,
                 "fault injection, repeatable: kill:rank=R:step=K (SIGKILL), stall:rank=R:step=K (stops responding), "
                 "slow:rank=R:step=K:ms=D (its compute D ms slower in every step from K), signal:rank=R:step=K "
                 "(SIGUSR1: a stop at the next step boundary)")
      ->type_name("KIND:rank=R:step=K[:ms=D]");
  app.add_option("--timeout", opts.timeout_s,
                 "watchdog: a wait longer than this many seconds ends the job with a line saying what hung (0: off)")
      ->type_name("SECONDS")
      ->capture_default_str();
  app.add_option("--profile", opts.profile,
                 "machine profile (partrain-calibrate) to predict the step with, stored as predicted_* beside the "
                 "measurement (default: $PARTRAIN_PROFILE)")
      ->type_name("FILE.toml");
  app.footer(kKokkosFooter);
}

void finish_common_options(CommonOptions& opts) {
  if (opts.profile.empty())
    if (const char* env = std::getenv("PARTRAIN_PROFILE")) opts.profile = env;
  opts.resume = opts.resume_option && opts.resume_option->count() > 0;
  if (opts.resume && opts.resume_dir.empty()) opts.resume_dir = opts.checkpoint_dir;
}

namespace {
/// The command line is the same on every rank: one rank says what is wrong; 2, the exit code of bad input.
int say_error(const std::string& app, const std::string& what) {
  if (world_rank_or_minus_one() <= 0) {
    std::fprintf(stderr, "%s: error: %s\n", app.c_str(), what.c_str());
    std::fflush(stderr);
  }
  return 2;
}
}  // namespace

int parse_command_line(CLI::App& app, int argc, char** argv, CommonOptions* opts) {
  const std::string name = app.get_name();
  app.set_version_flag("--version", [name] { return version_text(name); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    log0(app.help());
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    log0(app.help("", CLI::AppFormatMode::All));
    return 0;
  } catch (const CLI::CallForVersion& v) {
    log0(v.what());
    return 0;
  } catch (const CLI::ParseError& e) {
    return say_error(name, e.what());
  }
  if (opts) {
    if (opts->checkpoint_every < 0)
      return say_error(name, "--checkpoint-every = " + std::to_string(opts->checkpoint_every) + ": must be >= 0 (0: never)");
    if (opts->keep < 1) return say_error(name, "--keep = " + std::to_string(opts->keep) + ": must be >= 1");
    if (!(opts->timeout_s >= 0)) {
      char v[64];
      std::snprintf(v, sizeof v, "%g", opts->timeout_s);
      return say_error(name, std::string("--timeout = ") + v + ": must be >= 0 seconds (0 turns the watchdog off)");
    }
    finish_common_options(*opts);
  }
  return -1;
}

int run_tool(const char* app, const std::function<int()>& body) {
  try {
    return body();
  } catch (const InputError& e) {
    std::fprintf(stderr, "%s: error: %s\n", app, e.what());
    return 2;
  }
}

void load_deck(Deck& deck, const CommonOptions& opts) {
  if (!opts.input.empty()) deck.load_file(opts.input);
  for (const auto& s : opts.sets) deck.apply_override(s);
}

}  // namespace partrain
