// Liveness and coordination. Every rank sends the coordinator a heartbeat (its clock and the pushes it has posted)
// at least every timeout/5; the coordinator — the scheduler rank, or server 0 without one — sends the servers
// heartbeats of its own. Silence longer than ps.heartbeat_timeout_ms is what a failure looks like:
//   a worker:      removed (ps-lite's membership update); its data slice is redistributed from the clock after the
//                  last push it posted, and the event goes to every rank
//   a server:      the backup of each shard it was primary of is promoted (chain replication, Li et al. OSDI'14);
//                  without a backup the run cannot continue and stops with an error
//   the coordinator: the next candidate (scheduler, server 0, server 1, ...) takes over and announces itself
// The coordinator also ends the run: once every worker still a member is done, it tells every rank to exit.
#pragma once

#include <functional>
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

 private:
  void send_all(const Header& h);
  void take_over(int dead);
  void server_lost(int rank);

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
};

}  // namespace partrain::parallel::ps
