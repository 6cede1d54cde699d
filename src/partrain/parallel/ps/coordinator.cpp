#include "partrain/parallel/ps/coordinator.hpp"

#include <cstdio>

#include "partrain/core/error.hpp"
#include "partrain/core/timer.hpp"

namespace partrain::parallel::ps {
namespace {
std::string seconds_text(double s) {  // 1.5, not 1.500000
  char b[32];
  std::snprintf(b, sizeof b, "%g", s);
  return b;
}
}  // namespace


Coordinator::Coordinator(const Layout& layout, const Options& opt, Mailbox& mb, Membership& members,
                         std::vector<Event>& events, double t0)
    : layout_(layout),
      opt_(opt),
      mb_(mb),
      members_(members),
      events_(events),
      t0_(t0),
      interval_(opt.heartbeat_timeout_s / 5),
      last_heard_(std::size_t(layout.world()), wall_time_s()),
      pushes_(std::size_t(layout.world()), 0) {}

void Coordinator::start(double t0) {
  t0_ = t0;
  for (auto& t : last_heard_) t = wall_time_s();
  last_sent_ = -1e30;
}

std::int64_t Coordinator::slowest_pushes() const {
  std::int64_t m = -1;
  for (int w : members_.active()) m = m < 0 ? pushes_[std::size_t(w)] : std::min(m, pushes_[std::size_t(w)]);
  return m < 0 ? 0 : m;
}

void Coordinator::send_all(const Header& h) {
  for (int r = 0; r < layout_.world(); ++r)
    if (r != mb_.rank()) mb_.send(r, h);
}

bool Coordinator::on_message(int from, const Header& h) {
  last_heard_[std::size_t(from)] = wall_time_s();
  if (h.type() == kHeartbeat) {
    pushes_[std::size_t(from)] = std::max(pushes_[std::size_t(from)], h.i(2));
    return true;
  }
  if (h.type() == kJoinAsk) {
    if (!members_.joined(from)) ready_.insert(from);
    return true;
  }
  if (h.type() == kJoinHeld) {
    if (admitting_ >= 0) held_[from] = h.i(1);
    return true;
  }
  if (h.type() == kCoordinator) {
    for (auto& t : last_heard_) t = wall_time_s();  // the new coordinator's clock starts now
    if (on_new_coordinator) on_new_coordinator();
  }
  return false;
}

void Coordinator::admit() {
  if (!coordinating()) return;
  if (admitting_ < 0) {
    if (wanted_ <= 0 || ready_.empty()) return;
    admitting_ = *ready_.begin();
    held_.clear();
    for (int j : layout_.server_ranks())
      if (j != mb_.rank() && !members_.server_dead(j)) mb_.send(j, Header(kJoinHold, {double(admitting_)}));
    return;
  }
  // Every live server held: no worker can have started a clock beyond the furthest server's count, so the clock
  // after it is the first the spare can take part in (and after the latest removal: its supplements are the
  // survivors' own).
  std::int64_t furthest = layout_.role(mb_.rank()) == Role::Server && own_version ? own_version() : 0;
  for (int j : layout_.server_ranks()) {
    if (j == mb_.rank() || members_.server_dead(j)) continue;
    auto it = held_.find(j);
    if (it == held_.end()) return;
    furthest = std::max(furthest, it->second);
  }
  const std::int64_t K = std::max(furthest + 1, last_removal_ + 1);
  const int r = admitting_;
  admitting_ = -1;
  if (K >= total_clocks) {  // the others finished the run meanwhile: nothing left to join; the servers go on
    wanted_ = 0;
    send_all(Header(kJoin, {-1.0, double(K)}));
    return;
  }
  members_.mark_joined(r, K);
  ready_.erase(r);
  --wanted_;
  send_all(Header(kJoin, {double(r), double(K)}));  // the spare records the event when it starts clock K
}

void Coordinator::report(std::int64_t clock, std::int64_t pushes) {
  clock_ = clock;
  my_pushes_ = pushes;
  if (!coordinating()) {
    mb_.send(members_.coordinator(), Header(kHeartbeat, {double(clock), double(pushes)}));
    last_sent_ = wall_time_s();
  }
}

void Coordinator::server_lost(int r) {
  members_.mark_dead(r);
  for (int j = 0; j < layout_.shards(); ++j) {
    if (layout_.migration(j).to == r)
      throw RuntimeError("parameter server: server " + std::to_string(r) + " (which joined for shard " +
                         std::to_string(j) + ") stopped responding: a joined server has no backup; restart the job "
                         "with --resume");
    if (members_.owner(j) != r) continue;
    const int b = layout_.backup_of(j);
    if (!opt_.backup || b == r || members_.server_dead(b))
      throw RuntimeError("parameter server: server " + std::to_string(r) + " (primary of shard " + std::to_string(j) +
                         ") stopped responding and its shard has no live backup (ps.backup = " +
                         (opt_.backup ? "true" : "false") + "): restart the job with --resume");
    members_.set_owner(j, b);
    send_all(Header(kPromote, {double(j), double(b)}));
    events_.push_back(log_event(wall_time_s() - t0_, EventKind::ServerPromoted, r, slowest_pushes(),
                             "server " + std::to_string(r) + " silent; shard " + std::to_string(j) +
                                 " served by its backup, server " + std::to_string(b)));
  }
}

void Coordinator::take_over(int dead) {
  members_.mark_dead(dead);  // a silent scheduler or server is never asked to coordinate again
  const int next = members_.successor(dead);
  if (next < 0) throw RuntimeError("parameter server: no rank left to coordinate");
  members_.set_coordinator(next);
  const double now = wall_time_s();
  for (auto& t : last_heard_) t = now;
  admitting_ = -1;  // a join the old coordinator was arranging is abandoned (the servers release their hold)
  held_.clear();
  if (next != mb_.rank()) return;
  send_all(Header(kCoordinator, {double(next)}));
  events_.push_back(log_event(now - t0_, EventKind::CoordinatorTakeover, dead, slowest_pushes(),
                           "coordinator " + std::to_string(dead) + " silent; rank " + std::to_string(next) +
                               " coordinates"));
  if (layout_.role(dead) == Role::Server) server_lost(dead);
}

void Coordinator::tick() {
  const double now = wall_time_s();
  if (now - last_sent_ > interval_) {
    last_sent_ = now;
    if (!coordinating()) {
      mb_.send(members_.coordinator(), Header(kHeartbeat, {double(clock_), double(my_pushes_)}));
    } else {
      for (int j : layout_.server_ranks())
        if (j != mb_.rank() && !members_.server_dead(j)) mb_.send(j, Header(kHeartbeat, {double(clock_), 0}));
    }
  }
  const int me = mb_.rank();
  if (!coordinating()) {
    // Servers (and the scheduler) watch the coordinator.
    const int c = members_.coordinator();
    if (layout_.role(me) != Role::Worker && now - last_heard_[std::size_t(c)] > opt_.heartbeat_timeout_s) take_over(c);
    return;
  }
  for (int r = 0; r < layout_.world(); ++r) {
    if (r == me || now - last_heard_[std::size_t(r)] <= opt_.heartbeat_timeout_s) continue;
    const Role role = layout_.role(r);
    if (role == Role::Worker) {
      if (members_.removed(r) || members_.done(r) || !members_.member(r)) continue;  // a spare on standby: not a worker
      const std::int64_t from = pushes_[std::size_t(r)];
      members_.mark_removed(r, from);
      send_all(Header(kRemove, {double(r), double(from)}));
      last_removal_ = std::max(last_removal_, from);
      ++wanted_;
      events_.push_back(log_event(now - t0_, EventKind::WorkerRemoved, r, from,
                               "worker " + std::to_string(r) + " silent for more than " +
                                   seconds_text(opt_.heartbeat_timeout_s) + " s; its data slice is redistributed from clock " +
                                   std::to_string(from)));
      if (members_.active().empty() && !exit_sent_) {
        bool any_done = false;
        for (int i = 0; i < layout_.workers(); ++i) any_done = any_done || members_.done(layout_.worker_rank(i));
        if (!any_done && ready_.empty())
          throw RuntimeError("parameter server: no worker left (every worker stopped responding)");
      }
    } else if (role == Role::Server && !members_.server_dead(r)) {
      server_lost(r);
    }
  }
  admit();
  if (!exit_sent_ && members_.active().empty() && admitting_ < 0 && (wanted_ <= 0 || ready_.empty())) {
    send_all(Header(kExit, {}));
    exit_sent_ = true;
  }
}

}  // namespace partrain::parallel::ps
