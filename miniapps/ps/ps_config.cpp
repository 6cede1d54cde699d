#include "ps_config.hpp"

#include <unistd.h>

#include <set>

#include "partrain/core/error.hpp"
#include "partrain/core/log.hpp"
#include "partrain/io/checkpoint.hpp"

namespace partrain::ps_app {

void declare_keys(Deck& d) {
  models::declare_model_keys(d);
  models::declare_train_keys(d);
  d.declare_int("ps.servers", 1, "server ranks (ranks 0 .. servers-1), each the primary of one shard", 1, 4096);
  d.declare_int("ps.workers", 0, "worker ranks; 0: every rank that is not a server or the scheduler", 0, 1 << 20);
  d.declare_bool("ps.scheduler", false, "a scheduler rank (rank ps.servers) keeps membership and heartbeats; "
                                        "else server 0 does");
  d.declare_string("ps.mode", "bsp", "update rule", {"bsp", "asp", "ssp", "half_sync", "local"});
  d.declare_int("ps.staleness", 0, "ssp: a worker at clock c waits until every worker has pushed clock c-s-1", 0,
                1 << 30);
  d.declare_float("ps.jitter_ms", 0.0, "half_sync: each push waits a random 0..jitter_ms first", 0.0, 1e7);
  d.declare_int("ps.local_steps", 1, "local: mini-batches a worker trains before pushing its change", 1, 1 << 20);
  d.declare_string("ps.straggler", "", "\"rank:delay_ms\": that worker sleeps delay_ms before every push");
  d.declare_int("ps.delay_buffer", 0, "asp: a worker more than D mini-batches behind the fastest holds up to D + 1 "
                "and pushes them together (0: off)", 0, 1 << 20);
  d.declare_bool("ps.backup", false, "replicate every shard on the next server (chain replication)");
  d.declare_float("ps.heartbeat_timeout_ms", 5000.0, "silence after which a rank counts as failed", 0.0, 1e9, true);
  d.declare_int("ps.checkpoint_every", 0, "servers checkpoint every this many clocks (0: never)", 0, 1 << 30);
  d.declare_string("ps.checkpoint_dir", "", "directory of the checkpoints (ckpt-<step>.h5)");
  d.declare_int("ps.checkpoint_keep", 2, "newest checkpoints kept", 1, 1 << 20);
  d.declare_int("ps.spares", 0, "the last ranks are spare workers: idle until they join (a planned --inject join, "
                               "or in place of a removed worker)", 0, 1 << 20);
  d.declare_bool("ps.hybrid", false, "sparse embedding rows on the servers, dense layers allreduced among the workers "
                                     "(model.kind = \"sparse_mlp\", bsp; docs/ps.md)");
}

namespace {
std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

/// ps.spares and the planned joins: spares leave a worker, in a mode whose data split follows the membership; a join
/// names a spare, once, before the last step.
void check_spares(const Config& c, const FaultPlan& plan, int workers, const std::string& mode) {
  const int spares = c.ps.spares;
  const int first_spare = c.ps.servers + (c.ps.scheduler ? 1 : 0) + workers - spares;
  const int world = first_spare + spares;
  if (spares >= workers)
    input_error("ps.spares", std::to_string(spares),
                "leaves no worker: " + std::to_string(workers) + " worker ranks, " + std::to_string(spares) +
                    " of them spares (a run needs a worker from the start)");
  if (spares > 0 && c.ps.mode != parallel::ps::Mode::Bsp && c.ps.mode != parallel::ps::Mode::HalfSync)
    input_error("ps.spares", std::to_string(spares),
                "joining is built for bsp and half_sync (ps.mode is " + in_quotes(mode) +
                    "): asp's and ssp's tickets and local's rounds split the data over the workers of the start");
  std::set<int> seen, shards;
  int server_joins = 0;
  for (const auto& f : plan.of(Fault::Join)) server_joins += f.shard >= 0 ? 1 : 0;
  for (const auto& f : plan.of(Fault::Join)) {
    const std::string spec = "join:rank=" + std::to_string(f.rank) + ":step=" + std::to_string(f.step) +
                             (f.shard >= 0 ? ":shard=" + std::to_string(f.shard) : std::string());
    if (spares == 0) input_error("--inject", spec, "no spare to join: ps.spares = 0");
    if (f.rank < first_spare || f.rank >= world)
      input_error("--inject", spec,
                  "rank " + std::to_string(f.rank) + " is not a spare (the spares are ranks " +
                      std::to_string(first_spare) + ".." + std::to_string(world - 1) + ")");
    if (f.step >= c.train.steps)
      input_error("--inject", spec, "step " + std::to_string(f.step) + " is past the run (train.steps = " +
                                        std::to_string(c.train.steps) + ")");
    if (!seen.insert(f.rank).second) input_error("--inject", spec, "rank " + std::to_string(f.rank) + " joins once");
    if (f.shard < 0) continue;
    // A joining server takes over one of the extra shards the key space is cut into: S, S+1, … (one per server join)
    const int S = c.ps.servers;
    if (f.shard < S || f.shard >= S + server_joins || !shards.insert(f.shard).second)
      input_error("--inject", spec,
                  "a joining server takes one of the extra shards " + std::to_string(S) + ".." +
                      std::to_string(S + server_joins - 1) + " (one per server join, each once; shards 0.." +
                      std::to_string(S - 1) + " stay on their servers)");
    if (c.ps.backup)
      input_error("--inject", spec, "a server join with ps.backup = true (a joined server's shard has no replica)");
    if (c.ps.checkpoint_every > 0)
      input_error("--inject", spec,
                  "a server join with checkpoints (ps.checkpoint_every): the servers write them together, and a "
                  "joining server is not one of them from the start");
  }
}

/// ps.hybrid: sparse parameters, bsp, an optimizer whose lazy rows are its dense update, 32 or 64 bits, and none of
/// the event-loop server's mechanisms (it runs in lockstep).
void check_hybrid(const Deck& d, const Config& c, const std::vector<std::string>& inject, bool resume) {
  if (c.model.kind != "sparse_mlp")
    input_error("ps.hybrid", "true",
                "needs sparse parameters: model.kind = \"sparse_mlp\" (the embedding tables live on the servers); \"" +
                    c.model.kind + "\" has none");
  const auto& o = c.train.optimizer;
  if (o.kind != "adagrad" && o.kind != "sgd")
    input_error("train.optimizer", in_quotes(o.kind),
                "with ps.hybrid: the servers update only the rows a batch touched (lazy rows), which equals the dense "
                "update for adagrad and sgd, while Adam's moments move untouched rows too");
  if (o.kind == "sgd" && o.momentum != 0)
    input_error("train.momentum", Deck::render(d.get("train.momentum")),
                "with ps.hybrid: momentum moves rows a batch did not touch, which lazy rows skip (use 0, or adagrad)");
  if (o.weight_decay != 0)
    input_error("train.weight_decay", Deck::render(d.get("train.weight_decay")),
                "with ps.hybrid: weight decay moves rows a batch did not touch, which lazy rows skip (use 0)");
  if (c.train.precision != "fp32")
    input_error("train.precision", in_quotes(c.train.precision), "with ps.hybrid: the hybrid runs in fp32 or fp64");
  if (c.ps.mode != parallel::ps::Mode::Bsp)
    input_error("ps.mode", in_quotes(parallel::ps::name(c.ps.mode)), "with ps.hybrid: the hybrid runs bsp");
  const std::pair<const char*, bool> unused[] = {{"ps.spares", c.ps.spares > 0},
      {"ps.scheduler", c.ps.scheduler},           {"ps.backup", c.ps.backup},
      {"ps.checkpoint_every", c.ps.checkpoint_every != 0}, {"ps.checkpoint_dir", !c.ps.checkpoint_dir.empty()},
      {"ps.straggler", c.ps.straggler >= 0}};
  for (const auto& [k, set] : unused)
    if (set)
      input_error(k, Deck::render(d.get(k)),
                  "not with ps.hybrid: the hybrid runs in lockstep, without the event-loop server's scheduler, "
                  "recoveries and straggler");
  if (!inject.empty()) input_error("--inject", inject.front(), "not with ps.hybrid (no recoveries in the hybrid)");
  if (resume) input_error("--resume", "", "not with ps.hybrid (the hybrid writes no checkpoints)");
}
}  // namespace

Config read_config(const Deck& d, int world, const std::vector<std::string>& inject, bool resume, bool overwrite,
                   bool dump_state) {
  namespace pps = parallel::ps;
  Config c;
  c.model = models::read_model_spec(d);
  models::require_dense(c.model, "partrain-ps");
  models::require_kind(c.model, "partrain-ps", {"gpt", "mlp", "sparse_mlp"});
  c.train = models::read_train_spec(d);
  auto& o = c.ps;
  o.servers = int(d.get_int("ps.servers"));
  o.scheduler = d.get_bool("ps.scheduler");
  const std::string mode = d.get_string("ps.mode");
  o.mode = mode == "asp" ? pps::Mode::Asp
           : mode == "ssp" ? pps::Mode::Ssp
           : mode == "half_sync" ? pps::Mode::HalfSync
           : mode == "local" ? pps::Mode::Local
                             : pps::Mode::Bsp;
  if (o.mode == pps::Mode::Local && c.train.precision != "fp32")
    input_error("ps.mode", "\"local\"",
                "local SGD pushes parameter changes, which 16-bit workers would round: it runs with train.precision = "
                "fp32 (this run is " + c.train.precision + ")");
  o.staleness = int(d.get_int("ps.staleness"));
  if (c.train.precision == "fp16" && d.get_int("ps.delay_buffer") > 0)
    input_error("ps.delay_buffer", std::to_string(d.get_int("ps.delay_buffer")),
                "not with train.precision = fp16: the held mini-batches' gradients may carry different loss scales");
  o.jitter_ms = d.get_float("ps.jitter_ms");
  o.local_steps = int(d.get_int("ps.local_steps"));
  o.backup = d.get_bool("ps.backup");
  o.delay_buffer = int(d.get_int("ps.delay_buffer"));
  o.heartbeat_timeout_s = d.get_float("ps.heartbeat_timeout_ms") * 1e-3;
  o.checkpoint_every = int(d.get_int("ps.checkpoint_every"));
  o.checkpoint_dir = d.get_string("ps.checkpoint_dir");
  o.checkpoint_keep = int(d.get_int("ps.checkpoint_keep"));
  o.resume = resume;
  o.overwrite = overwrite;
  o.dump_state = dump_state;

  const int sched = o.scheduler ? 1 : 0;
  const int workers = world - o.servers - sched;
  if (workers < 1)
    input_error("ps.servers", std::to_string(o.servers),
                "leaves no worker: " + std::to_string(world) + " ranks = " + std::to_string(o.servers) + " servers" +
                    (o.scheduler ? " + 1 scheduler" : "") + " + at least 1 worker needs " +
                    std::to_string(o.servers + sched + 1) + " ranks");
  const auto W = d.get_int("ps.workers");
  if (W != 0 && W != workers)
    input_error("ps.workers", std::to_string(W),
                "does not match the ranks: " + std::to_string(o.servers) + " servers" + (o.scheduler ? " + 1 scheduler" : "") +
                    " + " + std::to_string(W) + " workers = " + std::to_string(o.servers + sched + W) + ", but the job has " +
                    std::to_string(world) + " ranks");
  if (o.mode != pps::Mode::Ssp && o.staleness != 0)
    input_error("ps.staleness", std::to_string(o.staleness), "is only used with ps.mode = \"ssp\" (ps.mode is " + in_quotes(mode) + ")");
  if (o.mode != pps::Mode::HalfSync && o.jitter_ms != 0)
    input_error("ps.jitter_ms", std::to_string(o.jitter_ms), "is only used with ps.mode = \"half_sync\" (ps.mode is " + in_quotes(mode) + ")");
  if (o.mode != pps::Mode::Local && o.local_steps != 1)
    input_error("ps.local_steps", std::to_string(o.local_steps), "is only used with ps.mode = \"local\" (ps.mode is " + in_quotes(mode) + ")");
  if (o.mode != pps::Mode::Asp && o.delay_buffer != 0)
    input_error("ps.delay_buffer", std::to_string(o.delay_buffer), "is only used with ps.mode = \"asp\" (ps.mode is " + in_quotes(mode) + ")");
  if (o.backup && o.servers < 2)
    input_error("ps.backup", "true", "needs at least 2 servers (a shard's backup lives on the next server)");
  if (c.train.global_batch < workers)
    input_error("train.batch", std::to_string(c.train.global_batch),
                "is smaller than the " + std::to_string(workers) + " workers: every worker needs a sample per step");
  const std::string straggler = d.get_string("ps.straggler");
  if (!straggler.empty()) {
    int rank = -1;
    double ms = 0;
    char tail = 0;
    if (std::sscanf(straggler.c_str(), "%d:%lf%c", &rank, &ms, &tail) != 2 || ms <= 0)
      input_error("ps.straggler", in_quotes(straggler), "must be \"rank:delay_ms\" with delay_ms > 0");
    if (rank < o.servers + sched || rank >= world)
      input_error("ps.straggler", in_quotes(straggler),
                  "rank " + std::to_string(rank) + " is not a worker (workers are ranks " + std::to_string(o.servers + sched) +
                      ".." + std::to_string(world - 1) + ")");
    o.straggler = rank;
    o.straggler_ms = ms;
  }
  o.faults = FaultPlan(inject, world);
  o.spares = int(d.get_int("ps.spares"));
  check_spares(c, o.faults, workers, mode);
  o.hybrid = d.get_bool("ps.hybrid");
  if (o.hybrid) check_hybrid(d, c, inject, resume);
  if (dump_state && !pps::synchronous(o.mode))
    input_error("ps.mode", "\"" + mode + "\"",
                "cannot be combined with --dump-state (bsp or half_sync can): after an asynchronous run the state depends on timing");
  if (dump_state && o.mode == pps::Mode::Local)
    input_error("ps.mode", "\"local\"",
                "cannot be combined with --dump-state (bsp or half_sync can): local mode pushes parameter changes, not gradients");
  if (o.checkpoint_every > 0 && o.checkpoint_dir.empty())
    input_error("ps.checkpoint_every", std::to_string(o.checkpoint_every), "needs ps.checkpoint_dir");
  if (resume && o.checkpoint_dir.empty()) input_error("--resume", "", "needs ps.checkpoint_dir (where the checkpoints are)");
  if (!o.checkpoint_dir.empty())
    io::check_checkpoint_dir("ps.checkpoint_dir", in_quotes(o.checkpoint_dir), o.checkpoint_dir, resume, overwrite);
  return c;
}

std::string find_checkpoint(const Config& c) {
  std::vector<std::string> skipped;
  const std::string path = io::newest_valid_checkpoint(MPI_COMM_WORLD, c.ps.checkpoint_dir, &skipped);
  for (const auto& s : skipped) log0("# resume: skipped " + s);
  if (path.empty()) {
    log0("# resume: no valid checkpoint in " + c.ps.checkpoint_dir + "; starting at step 0");
    return path;
  }
  std::vector<io::TensorPart> none;
  io::CheckpointMeta meta;
  io::read_checkpoint(MPI_COMM_WORLD, path, none, &meta);
  const std::string model = models::describe(c.model), mode = parallel::ps::name(c.ps.mode);
  if (meta.model != model) input_error("--resume", path, "is a checkpoint of " + meta.model + ", this run trains " + model);
  if (meta.strings["strategy"] != "ps")
    input_error("--resume", path, "was written by strategy " + meta.strings["strategy"] + ", not by partrain-ps");
  if (meta.strings["ps_mode"] != mode)
    input_error("--resume", path, "was written with ps.mode = \"" + meta.strings["ps_mode"] + "\", this run has \"" + mode + "\"");
  if (meta.step >= c.train.steps)
    input_error("--resume", path, "is at step " + std::to_string(meta.step) + ": nothing left of train.steps = " +
                                      std::to_string(c.train.steps));
  log0("# resume: " + path + " (step " + std::to_string(meta.step) + ")");
  return path;
}

}  // namespace partrain::ps_app
