// Liveness and coordination. Every rank sends the coordinator a heartbeat (its clock and the pushes it has posted)
// at least every timeout/5; the coordinator — the scheduler rank, or server 0 without one — sends the servers
// heartbeats of its own. Silence longer than ps.heartbeat_timeout_ms is what a failure looks like:
//   a worker:      removed (ps-lite's membership update); its data slice is redistributed from the clock after the
//                  last push it posted, and the event goes to every rank
//   a server:      the backup of each shard it was primary of is promoted (chain replication, Li et al. OSDI'14);
//                  without a backup the run cannot continue and stops with an error
//   the coordinator: the next candidate (scheduler, server 0, server 1, ...) takes over and announces itself
//   a spare:       (ps.spares) announces itself when it starts; when a worker is removed the coordinator admits the
//                  lowest ready spare in its place: it holds every server's updates, takes the clock after the
//                  furthest server (and after the removal) as the join clock K — no worker can have started it —,
//                  tells every rank that the spare is a worker from K, and the servers go on (planned joins,
//                  --inject join:rank=R:step=K, are known to every rank from the start and need none of this)
// The coordinator also ends the run: once every worker still a member is done, it tells every rank to exit.
#pragma once

#include <functional>
#include <limits>
#include <map>
#include <set>
#include <vector>

#include "partrain/parallel/ps/membership.hpp"

namespace partrain::parallel::ps {

class Coordinator {
 public:
  /// A backup promoted by this rank itself learns it from the membership view (Membership::owner).
  Coordinator(const Layout& layout, const Options& opt, Mailbox& mb, Membership& members, std::vector<Event>& events,
              double t0);

  /// Restarts every heartbeat clock at the common start of the run.
  void start(double t0);
  /// The fewest pushes any active worker reported (the scheduler's clock).
  std::int64_t slowest_pushes() const;
  bool coordinating() const { return members_.coordinator() == mb_.rank(); }
  bool exit_sent() const { return exit_sent_; }
  /// Heartbeats and done messages addressed to the coordinator; true when consumed.
  bool on_message(int from, const Header& h);
  /// This rank's clock and posted pushes, reported at once (workers after every push).
  void report(std::int64_t clock, std::int64_t pushes);
  /// Heartbeats, failure detection, takeover, exit. Called often by every live rank.
  void tick();
  /// Called when the coordinator changed (workers that are done say so again to the new one).
  std::function<void()> on_new_coordinator;
  /// The update count of the coordinator's own server (when a server coordinates): a join's clock is chosen from it.
  std::function<std::int64_t()> own_version;
  /// Whether this rank's own server must hold its updates (a join's clock is being chosen).
  bool holding() const { return admitting_ >= 0; }
  /// The run's last clock + 1 (bsp: train.steps): a spare admitted at or after it would have nothing to do.
  std::int64_t total_clocks = std::numeric_limits<std::int64_t>::max();

 private:
  void send_all(const Header& h);
  void take_over(int dead);
  void server_lost(int rank);
  /// Admits a ready spare in place of a removed worker (the hold above), one at a time.
  void admit();

  const Layout& layout_;
  const Options& opt_;
  Mailbox& mb_;
  Membership& members_;
  std::vector<Event>& events_;
  double t0_, interval_, last_sent_ = -1e30;
  std::vector<double> last_heard_;
  std::vector<std::int64_t> pushes_;
  std::int64_t clock_ = 0, my_pushes_ = 0;
  bool exit_sent_ = false;
  std::set<int> ready_;                   ///< spares that announced themselves and have not joined
  int wanted_ = 0;                        ///< removed workers not yet replaced by a spare
  int admitting_ = -1;                    ///< the spare being admitted (servers held), or -1
  std::map<int, std::int64_t> held_;      ///< servers held for it, and their update counts
  std::int64_t last_removal_ = -1;        ///< the latest removal's clock
};

}  // namespace partrain::parallel::ps
