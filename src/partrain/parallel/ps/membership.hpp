// What every rank of a parameter-server job knows about the others, kept current by the coordinator's messages:
// which server holds each shard, which workers were removed (and from which clock their data slice is
// redistributed), which workers are done, who coordinates. Also the run's events and per-rank statistics.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "partrain/parallel/ps/layout.hpp"
#include "partrain/parallel/ps/mailbox.hpp"

namespace partrain::parallel::ps {

/// Events recorded in the result file (/ps/events: time, kind, rank, clock) and printed when they happen.
enum class EventKind {
  WorkerRemoved = 1, ServerPromoted, CoordinatorTakeover, Checkpoint, Resumed, Stalled, WorkerJoined, ServerJoined
};
const char* event_name(EventKind k);

struct Event {
  double t = 0;
  EventKind kind = EventKind::Checkpoint;
  int rank = -1;
  std::int64_t clock = 0;
  std::string text;
};

class Membership {
 public:
  /// `joins`: the planned joins (--inject join:rank=R:step=K), known to every rank from the start.
  Membership(const Layout& layout, const std::vector<Fault>& joins = {});

  int owner(int shard) const { return owner_[std::size_t(shard)]; }
  /// Where clock `clock`'s pull and push of a shard go: its joining server from the join's clock, else owner().
  int owner_at(int shard, std::int64_t clock) const;
  int coordinator() const { return coordinator_; }
  bool removed(int worker_rank) const { return removed_.count(worker_rank) > 0; }
  /// The clock from which a removed worker's slice is redistributed (its pushes before that count).
  std::int64_t removed_from(int worker_rank) const;
  bool done(int worker_rank) const { return done_.count(worker_rank) > 0; }
  bool server_dead(int rank) const { return dead_servers_.count(rank) > 0; }
  /// A spare that joined, and the clock from which it is a worker (-1: not joined).
  bool joined(int rank) const { return joined_.count(rank) > 0; }
  std::int64_t joined_from(int rank) const;
  /// A worker rank that takes part at all: not a spare, or a spare that joined.
  bool member(int rank) const { return !layout_.spare(rank) || joined(rank); }
  /// Membership changes known (removals and joins): a pull reply carries the server's count, and a worker splits the
  /// next clock only once it knows as many.
  std::int64_t changes() const { return std::int64_t(removed_.size() + joined_.size()); }
  void mark_joined(int rank, std::int64_t from) { joined_[rank] = from; }
  /// Workers whose data slice is in the partition of clock c (removed from c' > c still are, spares from the clock
  /// they joined), in rank order.
  std::vector<int> members_at(std::int64_t c) const;
  /// Workers not removed and not done.
  std::vector<int> active() const;
  const std::map<int, std::int64_t>& removals() const { return removed_; }

  /// Updates the view from a coordinator message (remove, promote, coordinator, done); false for other types.
  bool apply(int from, const Header& h);
  void set_owner(int shard, int rank) { owner_[std::size_t(shard)] = rank; }
  void set_coordinator(int rank) { coordinator_ = rank; }
  void mark_dead(int rank) { dead_servers_.insert(rank); }
  void mark_removed(int worker, std::int64_t from) { removed_[worker] = from; }
  void mark_done(int worker) { done_.insert(worker); }
  /// The next coordinator after `dead` (scheduler, then servers, skipping dead ones).
  int successor(int dead) const;

 private:
  const Layout& layout_;
  std::vector<int> owner_;
  int coordinator_;
  std::map<int, std::int64_t> removed_, joined_;
  std::set<int> done_, dead_servers_;
};

/// Prints an event line on this rank (whoever decided it) and returns the event for the record.
Event log_event(double t, EventKind kind, int rank, std::int64_t clock, const std::string& text);

}  // namespace partrain::parallel::ps
