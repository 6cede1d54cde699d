// Who does what in a parameter-server job, and which piece of the model travels in which message.
//
// Ranks [0, S) are servers, rank S the scheduler when there is one, the rest workers (W = ranks − S − scheduler).
// Server j is the primary of shard j: flat parameter elements [begin_j, end_j) of the model's buffer, contiguous and
// balanced by bytes (ps-lite's range partition). With backups on, server (j+1) mod S keeps a replica of shard j.
// A shard is cut further along layer boundaries into pieces: piece (layer l, shard j) is the part of layer l's
// parameters that shard j holds, the unit of a push or pull message, so that layer l's gradients can leave as soon
// as its backward is done and its parameters can be waited for just before its forward.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "partrain/core/fault.hpp"

namespace partrain::parallel::ps {

/// The update rules (docs/ps.md; the decisions themselves: rules.hpp):
///   bsp       a server applies clock c once every worker's push of c is in (their sum): partrain-dp's update
///   asp       every push is applied on arrival; a pull returns whatever is latest
///   ssp       asp, but a worker at clock c waits until every worker has pushed clock c − s − 1 (bound s)
///   half_sync bsp rounds in which every worker waits a random 0..jitter_ms before pushing
///   local     every worker trains local_steps mini-batches with its own optimizer, then pushes the change of its
///             parameters; a server averages the changes (weighted by samples) once all are in (local SGD)
enum class Mode { Bsp, Asp, Ssp, HalfSync, Local };
const char* name(Mode m);
/// Synchronous modes apply one update per clock from every worker's contribution.
inline bool synchronous(Mode m) { return m == Mode::Bsp || m == Mode::HalfSync || m == Mode::Local; }

struct Options {
  int servers = 1;
  bool scheduler = false;
  Mode mode = Mode::Bsp;
  int staleness = 0;          ///< ssp's bound s
  double jitter_ms = 0;       ///< half_sync: each push waits U(0, jitter_ms)
  int local_steps = 1;        ///< local: mini-batches per round
  int straggler = -1;         ///< a worker's world rank that sleeps straggler_ms before every push (-1: none)
  double straggler_ms = 0;
  bool backup = false;        ///< chain replication of every shard to the next server
  int delay_buffer = 0;       ///< asp: a worker more than D mini-batches behind the fastest holds its gradients,
                              ///< up to D + 1, and pushes them together as one update; 0: off
  double heartbeat_timeout_s = 5.0;
  int checkpoint_every = 0;   ///< clocks between server checkpoints (0: none)
  std::string checkpoint_dir;
  int checkpoint_keep = 2;
  bool resume = false;        ///< continue from the newest valid checkpoint of checkpoint_dir
  std::string resume_path;    ///< that checkpoint (found and checked before the run; empty: none, start at 0)
  bool overwrite = false;     ///< replace an earlier run's checkpoints
  bool dump_state = false;    ///< --dump-state: servers keep the last synchronous update's inputs
  FaultPlan faults;
  bool hybrid = false;        ///< ps.hybrid: the sparse-embedding parameter server (hybrid_trainer.hpp)
  int spares = 0;             ///< ps.spares: the last ranks are spare workers, idle until they join
};

enum class Role { Server, Scheduler, Worker };

struct Piece {
  int layer = 0, shard = 0;
  std::int64_t begin = 0, end = 0;  ///< flat elements
  std::int64_t size() const { return end - begin; }
};

class Layout {
 public:
  /// `layer_ranges`: the flat range each layer declares (Model::declared_range), in layer order.
  Layout(int world_size, const Options& opt, std::int64_t numel,
         const std::vector<std::pair<std::int64_t, std::int64_t>>& layer_ranges);

  int world() const { return world_; }
  int servers() const { return servers_; }
  int workers() const { return workers_; }
  int scheduler() const { return scheduler_; }  ///< world rank, or -1
  Role role(int rank) const;
  int first_worker() const { return servers_ + (scheduler_ >= 0 ? 1 : 0); }
  int worker_index(int rank) const { return rank - first_worker(); }
  int worker_rank(int index) const { return first_worker() + index; }
  int spares() const { return spares_; }
  /// A spare: one of the last ps.spares ranks, a worker only once it joined (membership.hpp), or a server from the
  /// start that takes a shard over at a planned clock.
  bool spare(int rank) const { return rank >= world_ - spares_ && rank >= first_worker(); }
  /// Shards: one per server, and one more per planned server join (--inject join:…:shard=J, J = S, S+1, …): shard
  /// j ≥ S starts on server j mod S and moves to its joining server at the join's clock.
  int shards() const { return int(shards_.size()); }
  int initial_owner(int j) const { return j < servers_ ? j : j % servers_; }
  struct Migration {
    int to = -1;             ///< the joining server's rank (-1: the shard never moves)
    std::int64_t clock = 0;  ///< from this clock on it holds the shard
  };
  const Migration& migration(int j) const { return migrations_[std::size_t(j)]; }
  /// The shard a joining server takes over, or -1.
  int joining_shard(int rank) const;
  /// Server ranks: the first S, then the joining servers.
  std::vector<int> server_ranks() const;
  /// The ranks that may coordinate, in order of succession: the scheduler, then the servers.
  std::vector<int> coordinator_candidates() const;

  std::int64_t numel() const { return numel_; }
  std::pair<std::int64_t, std::int64_t> shard(int j) const { return shards_[std::size_t(j)]; }
  std::int64_t shard_size(int j) const { return shards_[std::size_t(j)].second - shards_[std::size_t(j)].first; }
  int backup_of(int j) const { return (j + 1) % servers_; }
  const std::vector<Piece>& pieces() const { return pieces_; }
  /// Piece indices of layer l / of shard j (in layer order).
  const std::vector<int>& layer_pieces(std::size_t l) const { return by_layer_[l]; }
  const std::vector<int>& shard_pieces(int j) const { return by_shard_[std::size_t(j)]; }
  std::size_t layers() const { return by_layer_.size(); }

  // Message tags: 0 control headers, then a push and a pull tag per piece, then a replication tag per shard (a
  // migration's state travels on it: backups and server joins do not go together).
  static constexpr int kCtrlTag = 0;
  int push_tag(int piece) const { return 1 + 2 * piece; }
  int pull_tag(int piece) const { return 2 + 2 * piece; }
  int repl_tag(int shard) const { return 1 + 2 * int(pieces_.size()) + shard; }
  int max_tag() const { return repl_tag(shards() - 1); }

 private:
  int world_, servers_, scheduler_, workers_, spares_;
  std::int64_t numel_;
  std::vector<std::pair<std::int64_t, std::int64_t>> shards_;
  std::vector<Piece> pieces_;
  std::vector<std::vector<int>> by_layer_, by_shard_;
  std::vector<Migration> migrations_;
};

/// Samples [first, first + count) of a global batch of `batch` samples that member `index` of `members` takes
/// (contiguous, the first batch % members one sample larger).
std::pair<std::int64_t, std::int64_t> slice(std::int64_t batch, int members, int index);

}  // namespace partrain::parallel::ps
