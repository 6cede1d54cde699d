#include "partrain/parallel/ps/membership.hpp"

#include <cstdio>

namespace partrain::parallel::ps {

const char* event_name(EventKind k) {
  switch (k) {
    case EventKind::WorkerRemoved: return "worker removed";
    case EventKind::ServerPromoted: return "backup promoted";
    case EventKind::CoordinatorTakeover: return "coordinator takeover";
    case EventKind::Checkpoint: return "checkpoint";
    case EventKind::Resumed: return "resumed";
    case EventKind::Stalled: return "stalled (fault injection)";
    case EventKind::WorkerJoined: return "worker joined";
    case EventKind::ServerJoined: return "server joined";
  }
  return "?";
}

Membership::Membership(const Layout& layout, const std::vector<Fault>& joins)
    : layout_(layout), coordinator_(layout.coordinator_candidates().front()) {
  for (int j = 0; j < layout.shards(); ++j) owner_.push_back(layout.initial_owner(j));
  for (const auto& f : joins)
    if (f.shard < 0) joined_[f.rank] = f.step;  // a spare joining the workers (a joining server is in the layout)
}

int Membership::owner_at(int j, std::int64_t clock) const {
  const auto& m = layout_.migration(j);
  return m.to >= 0 && clock >= m.clock ? m.to : owner_[std::size_t(j)];
}

std::int64_t Membership::joined_from(int w) const {
  auto it = joined_.find(w);
  return it == joined_.end() ? -1 : it->second;
}

std::int64_t Membership::removed_from(int w) const {
  auto it = removed_.find(w);
  return it == removed_.end() ? -1 : it->second;
}

std::vector<int> Membership::members_at(std::int64_t c) const {
  std::vector<int> out;
  for (int i = 0; i < layout_.workers(); ++i) {
    const int w = layout_.worker_rank(i);
    if (layout_.spare(w) && (!joined(w) || c < joined_from(w))) continue;
    auto it = removed_.find(w);
    if (it == removed_.end() || c <= it->second) out.push_back(w);
  }
  return out;
}

std::vector<int> Membership::active() const {
  std::vector<int> out;
  for (int i = 0; i < layout_.workers(); ++i) {
    const int w = layout_.worker_rank(i);
    if (member(w) && !removed(w) && !done(w)) out.push_back(w);
  }
  return out;
}

bool Membership::apply(int /*from*/, const Header& h) {
  switch (h.type()) {
    case kRemove: removed_[int(h.i(1))] = h.i(2); return true;
    case kPromote:
      if (owner_[std::size_t(h.i(1))] != int(h.i(2))) dead_servers_.insert(owner_[std::size_t(h.i(1))]);
      owner_[std::size_t(h.i(1))] = int(h.i(2));
      return true;
    case kCoordinator:
      if (coordinator_ != int(h.i(1)) && layout_.role(coordinator_) == Role::Server) dead_servers_.insert(coordinator_);
      coordinator_ = int(h.i(1));
      return true;
    case kDone: done_.insert(int(h.i(1))); return true;
    case kJoin:
      if (h.i(1) >= 0) joined_[int(h.i(1))] = h.i(2);  // -1: an admission abandoned (it only releases the servers)
      return true;
    default: return false;
  }
}

int Membership::successor(int dead) const {
  const auto c = layout_.coordinator_candidates();
  std::size_t i = 0;
  while (i < c.size() && c[i] != dead) ++i;
  for (std::size_t k = i + 1; k < c.size(); ++k)
    if (!dead_servers_.count(c[k])) return c[k];
  return -1;
}

Event log_event(double t, EventKind kind, int rank, std::int64_t clock, const std::string& text) {
  std::printf("# ps event at %.3f s: %s (rank %d, clock %lld): %s\n", t, event_name(kind), rank, (long long)clock,
              text.c_str());
  std::fflush(stdout);
  return {t, kind, rank, clock, text};
}

}  // namespace partrain::parallel::ps
