// The command line every mini-app shares (CLI11): --input DECK.toml, --set key=value (repeatable), --output,
// --dump-state, --overwrite, --print-deck. App-specific flags are added to the same CLI::App before parsing.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "partrain/core/config.hpp"

namespace partrain {

struct CommonOptions {
  std::string input;               ///< TOML deck
  std::vector<std::string> sets;   ///< key=value overrides, applied after the deck
  std::string output;              ///< HDF5 result file
  std::string dump_state;          ///< HDF5 state dump
  bool overwrite = false;
  bool print_deck = false;         ///< print the resolved deck as TOML and exit
  // Reliability (docs/checkpoints.md): every training mini-app.
  std::string checkpoint_dir;      ///< --checkpoint-dir
  std::int64_t checkpoint_every = 0;  ///< --checkpoint-every N steps (0: never)
  int keep = 2;                    ///< --keep: newest checkpoints kept
  bool resume = false;             ///< --resume [DIR]
  std::string resume_dir;          ///< its DIR (else the checkpoint directory)
  std::vector<std::string> inject; ///< --inject KIND:rank=R:step=K[:ms=D]
  double timeout_s = 900;          ///< --timeout: the watchdog (0: off)
  std::string profile;             ///< --profile: a machine profile for predicted_* figures ($PARTRAIN_PROFILE)
  const CLI::Option* resume_option = nullptr;
};

/// The footer of every MPI program's --help: where Kokkos' own options are.
inline constexpr const char* kKokkosFooter =
    "Kokkos options (--kokkos-threads=N, --kokkos-device-id=N, ...): run with --kokkos-help to list them.";

/// Adds the common flags to `app`.
void add_common_options(CLI::App& app, CommonOptions& opts);
/// After parsing: fills the values the flags imply (--resume without DIR: the checkpoint directory).
void finish_common_options(CommonOptions& opts);

/// Parses argv (adding --version). Returns -1 to go on, or an exit code: 0 after --help or --version (printed on
/// rank 0), 2 after a command-line error (one line, from rank 0; the command line is the same on every rank).
int parse_command_line(CLI::App& app, int argc, char** argv, CommonOptions* opts = nullptr);

/// The main of a tool that runs without MPI (partrain-sweep, partrain-compare): calls body, turning an
/// InputError into "app: error: …" on stderr and exit code 2.
int run_tool(const char* app, const std::function<int()>& body);

/// Loads opts.input (if any) into `deck`, then applies the --set overrides in order; validates output paths.
void load_deck(Deck& deck, const CommonOptions& opts);

}  // namespace partrain
