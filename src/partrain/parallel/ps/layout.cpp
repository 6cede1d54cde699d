#include "partrain/parallel/ps/layout.hpp"

#include <algorithm>

#include "partrain/core/error.hpp"
#include "partrain/parallel/trainer.hpp"

namespace partrain::parallel::ps {

const char* name(Mode m) {
  switch (m) {
    case Mode::Bsp: return "bsp";
    case Mode::Asp: return "asp";
    case Mode::Ssp: return "ssp";
    case Mode::HalfSync: return "half_sync";
    case Mode::Local: return "local";
  }
  return "?";
}

Layout::Layout(int world, const Options& opt, std::int64_t numel,
               const std::vector<std::pair<std::int64_t, std::int64_t>>& layer_ranges)
    : world_(world),
      servers_(opt.servers),
      scheduler_(opt.scheduler ? opt.servers : -1),
      workers_(world - opt.servers - (opt.scheduler ? 1 : 0)),
      spares_(opt.spares),
      numel_(numel) {
  PARTRAIN_REQUIRE(servers_ >= 1 && workers_ - spares_ >= 1, "a parameter-server layout needs a server and a worker");
  int n = servers_;
  for (const auto& f : opt.faults.of(Fault::Join)) n += f.shard >= 0 ? 1 : 0;
  migrations_.resize(std::size_t(n));
  for (const auto& f : opt.faults.of(Fault::Join))
    if (f.shard >= 0) {
      PARTRAIN_REQUIRE(f.shard >= servers_ && f.shard < n, "a joining server's shard is one of the extra shards");
      migrations_[std::size_t(f.shard)] = {f.rank, f.step};
    }
  for (int j = 0; j < n; ++j) shards_.emplace_back(numel * j / n, numel * (j + 1) / n);
  by_layer_.resize(layer_ranges.size());
  by_shard_.resize(std::size_t(n));
  for (std::size_t l = 0; l < layer_ranges.size(); ++l)
    for (int j = 0; j < n; ++j) {
      const auto a = std::max(layer_ranges[l].first, shards_[std::size_t(j)].first);
      const auto b = std::min(layer_ranges[l].second, shards_[std::size_t(j)].second);
      if (a >= b) continue;
      by_layer_[l].push_back(int(pieces_.size()));
      by_shard_[std::size_t(j)].push_back(int(pieces_.size()));
      pieces_.push_back({int(l), j, a, b});
    }
}

int Layout::joining_shard(int rank) const {
  for (std::size_t j = 0; j < migrations_.size(); ++j)
    if (migrations_[j].to == rank) return int(j);
  return -1;
}

std::vector<int> Layout::server_ranks() const {
  std::vector<int> r;
  for (int j = 0; j < servers_; ++j) r.push_back(j);
  for (const auto& m : migrations_)
    if (m.to >= 0) r.push_back(m.to);
  return r;
}

Role Layout::role(int rank) const {
  if (rank < servers_ || joining_shard(rank) >= 0) return Role::Server;
  if (rank == scheduler_) return Role::Scheduler;
  return Role::Worker;
}

std::vector<int> Layout::coordinator_candidates() const {
  std::vector<int> c;
  if (scheduler_ >= 0) c.push_back(scheduler_);
  for (int j = 0; j < servers_; ++j) c.push_back(j);
  return c;
}

std::pair<std::int64_t, std::int64_t> slice(std::int64_t batch, int members, int index) {
  const auto s = share_of(batch, members, index);  // partrain-dp's and ZeRO's shares too
  return {s.first, s.count};
}

}  // namespace partrain::parallel::ps
