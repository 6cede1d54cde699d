#include "partrain/parallel/ps/server.hpp"

#include <algorithm>
#include <cstdio>
#include <tuple>

#include "partrain/core/error.hpp"
#include "partrain/core/timer.hpp"
#include "partrain/io/checkpoint.hpp"
#include "partrain/parallel/ps/rules.hpp"

namespace partrain::parallel::ps {

using Key = std::tuple<std::int64_t, int, int>;  // sync: (clock, worker, kind); async: (arrival, worker, kind)

template <class T>
struct Server<T>::Contribution {
  int worker = 0;  ///< world rank
  int kind = 0;    ///< 0: its own slice; d + 1: its part of removed worker d's slice
  std::int64_t clock = 0, version_read = 0, step = 0, first = 0, count = 0, steps = 1;
  double loss_scale = 1;  ///< fp16: what the worker's loss was multiplied by
  HostView data;
  std::vector<int> ids;
  bool discard = false;
};

template <class T>
struct Server<T>::Shard {
  int j = 0;
  bool primary = false;
  std::int64_t begin = 0, size = 0;
  HostM params, acc;  ///< the shard (fp32 master weights of a 16-bit model), a clock's sum
  HostView half;      ///< a 16-bit model's: the shard rounded, what pulls send (empty otherwise)
  std::unique_ptr<models::Optimizer<Wide, Kokkos::HostSpace>> opt;
  models::LossScaler scaler;  ///< fp16: this shard's
  std::int64_t version = 0, tickets = 0, arrivals = 0;
  std::vector<std::int64_t> applied;  ///< per worker index: pushes applied
  std::vector<std::int64_t> steps;    ///< per worker index: mini-batches in the pushes applied (a delayed push holds several)
  std::map<Key, Contribution> pending;
  std::vector<HostView> free_buffers;
  struct Pull {
    int worker;
    std::int64_t clock, pushes;
    bool ticket, held = false;
  };
  std::deque<Pull> pulls;
  struct Snap {
    std::int64_t version;
    HostView data;
    std::vector<int> dests;
  };
  std::deque<Snap> snaps;
  int unacked = 0;
  struct Repl {
    Header h;
    int from;
    HostM data;
    int id;
  };
  std::deque<Repl> repl_in;
  std::vector<HostM> repl_out;
  HostM dump_params, dump_grad;
  // A server join (layout.hpp, Migration): the first owner's shard moves at clock `until` to `migrate_to`; the
  // joining server's waits for it (`incoming`, the receives in `in_ids`, the per-worker counts in `in_counts`).
  std::int64_t until = -1;
  int migrate_to = -1;
  bool moved = false, incoming = false;
  std::vector<int> in_ids;
  std::vector<double> in_counts;
  Header in_h;
  int in_from = -1;
};

namespace {
template <class V>
V host_buffer(const std::string& label, std::int64_t n) {
  return V(Kokkos::view_alloc(Kokkos::WithoutInitializing, label), n);
}
}  // namespace

template <class T>
Server<T>::Server(Context& cx, const models::ParamStore<T>& store, std::uint64_t seed, coll::MpiCommunicator& servers)
    : cx_(cx), store_(store), servers_(servers) {
  const auto& L = cx.layout;
  const int me = cx.rank();
  auto make = [&](int j, bool primary) {
    auto s = std::make_unique<Shard>();
    s->j = j;
    s->primary = primary;
    s->begin = L.shard(j).first;
    s->size = L.shard_size(j);
    s->params = host_buffer<HostM>((is_half_v<T> ? "optim/ps.master" : "params/ps.shard") + std::to_string(j), s->size);
    store.init_values(seed, s->begin, s->begin + s->size, s->params.data());  // a 16-bit model's: unrounded
    if (is_half_v<T>) s->half = host_buffer<HostView>("params/ps.shard" + std::to_string(j), s->size);
    refresh_half(*s);
    if (cx.opt.mode != Mode::Local)
      s->opt = std::make_unique<models::Optimizer<Wide, Kokkos::HostSpace>>(cx.train.optimizer, s->size,
                                                                         "optim/ps.shard" + std::to_string(j) + ".");
    s->applied.assign(std::size_t(L.workers()), 0);
    s->steps.assign(std::size_t(L.workers()), 0);
    s->scaler = models::LossScaler(cx.train.loss_scale);
    shards_.push_back(std::move(s));
  };
  const int joining = L.joining_shard(me);
  if (joining >= 0) {  // a joining server: its shard arrives at the join's clock; pulls and pushes queue meanwhile
    make(joining, false);
    shards_.back()->incoming = true;
    shards_.back()->version = L.migration(joining).clock;
  } else {
    make(me, true);
    for (int j = L.servers(); j < L.shards(); ++j)  // the shards of planned server joins, until they move
      if (L.initial_owner(j) == me) {
        make(j, true);
        shards_.back()->until = L.migration(j).clock;
        shards_.back()->migrate_to = L.migration(j).to;
      }
  }
  if (cx.opt.backup && L.servers() > 1) make((me - 1 + L.servers()) % L.servers(), false);
  cx.coord.own_version = [this] { return version(); };
}

template <class T>
Server<T>::~Server() = default;

template <class T>
void Server<T>::refresh_half(Shard& s) {
  if constexpr (is_half_v<T>) {
    const Wide* p = s.params.data();
    T* h = s.half.data();
    for (std::int64_t i = 0; i < s.size; ++i) h[i] = T(p[i]);
  }
}

template <class T>
typename Server<T>::Shard* Server<T>::shard(int j) {
  for (auto& s : shards_)
    if (s->j == j) return s.get();
  return nullptr;
}

template <class T>
std::int64_t Server<T>::version() const {
  return shards_.front()->version;  // its own shard (the first it made); a shard it took over as backup is as far
}

template <class T>
std::vector<std::pair<int, std::int64_t>> Server<T>::primary_versions() const {
  std::vector<std::pair<int, std::int64_t>> out;
  if (stalled_) return out;
  for (const auto& s : shards_)
    if (s->primary) out.emplace_back(s->j, s->version);
  return out;
}

template <class T>
std::int64_t Server<T>::clock_of(const Shard& s) const {
  return synchronous(cx_.opt.mode) ? s.version : s.version / cx_.layout.workers();
}

template <class T>
void Server<T>::load(const std::string& path) {
  std::vector<io::TensorPart> parts;
  std::vector<std::pair<Shard*, std::string>> where;  // which part goes where
  for (auto& s : shards_) {
    std::vector<double> zeros(std::size_t(s->size), 0.0);
    auto add = [&](const std::string& group) {
      for (auto& p : io::flat_range_parts(store_, group, s->begin, s->begin + s->size, zeros.data())) {
        parts.push_back(std::move(p));
        where.emplace_back(s.get(), group);
      }
    };
    add("params");
    if (s->opt && s->opt->m().size()) add("optim/m");
    if (s->opt && s->opt->v().size()) add("optim/v");
  }
  io::CheckpointMeta meta;
  io::read_checkpoint(servers_.comm(), path, parts, &meta);
  std::map<std::pair<Shard*, std::string>, std::int64_t> cursor;
  for (std::size_t k = 0; k < parts.size(); ++k) {
    Shard* s = where[k].first;
    const std::string& g = where[k].second;
    auto& at = cursor[where[k]];
    Wide* dst = g == "params" ? s->params.data() : g == "optim/m" ? s->opt->m().data() : s->opt->v().data();
    for (double v : parts[k].values) dst[at++] = Wide(v);
  }
  for (auto& s : shards_) {
    refresh_half(*s);
    if constexpr (std::is_same_v<T, fp16>) {  // this shard's scaler, or the most backed-off one of another layout
      const std::string key = "loss_scale.shard" + std::to_string(s->j);
      if (meta.numbers.count(key)) {
        s->scaler.restore(meta.numbers[key], std::int64_t(meta.numbers["loss_scale_growth_tracker.shard" + std::to_string(s->j)]),
                          std::int64_t(meta.numbers["skipped_steps.shard" + std::to_string(s->j)]));
      } else {
        double lowest = 0;
        for (const auto& [k, v] : meta.numbers)
          if (k.rfind("loss_scale.shard", 0) == 0) lowest = lowest > 0 ? std::min(lowest, v) : v;
        if (lowest > 0) s->scaler.restore(lowest, 0, 0);
      }
    }
    s->version = std::int64_t(meta.numbers["version"]);
    s->tickets = s->version;  // async: tickets of pushes not applied are handed out again
    if (s->opt) s->opt->set_steps(std::int64_t(meta.numbers["optimizer_steps"]));
    const std::int64_t per = synchronous(cx_.opt.mode) ? s->version : s->version / cx_.layout.workers();
    s->applied.assign(std::size_t(cx_.layout.workers()), per);
  }
}

template <class T>
void Server<T>::checkpoint(std::int64_t v) {
  const auto& o = cx_.opt;
  Shard& s = *shards_.front();
  std::vector<io::CheckpointTensor> tensors = io::store_tensors(store_, "params");
  std::vector<io::TensorPart> parts;
  auto add = [&](const std::string& group, const Wide* data) {
    std::vector<double> vals(data, data + s.size);
    for (auto& p : io::flat_range_parts(store_, group, s.begin, s.begin + s.size, vals.data())) parts.push_back(std::move(p));
  };
  add("params", s.params.data());
  if (s.opt && s.opt->m().size()) {
    for (auto& t : io::store_tensors(store_, "optim/m")) tensors.push_back(t);
    add("optim/m", s.opt->m().data());
  }
  if (s.opt && s.opt->v().size()) {
    for (auto& t : io::store_tensors(store_, "optim/v")) tensors.push_back(t);
    add("optim/v", s.opt->v().data());
  }
  io::CheckpointMeta meta;
  const std::int64_t W = cx_.layout.workers();
  meta.step = o.mode == Mode::Local ? std::min(v * o.local_steps, cx_.train.steps)
              : synchronous(o.mode) ? v
                                    : v / W;
  meta.numbers["version"] = double(v);
  meta.numbers["optimizer_steps"] = s.opt ? double(s.opt->steps_taken()) : 0.0;
  if constexpr (std::is_same_v<T, fp16>) {  // every shard's scaler (collective over the servers)
    double mine[4] = {double(s.j), s.scaler.scale(), double(s.scaler.growth_tracker()), double(s.scaler.skipped())};
    std::vector<double> all(4 * std::size_t(servers_.size()));
    MPI_Request req;
    PARTRAIN_MPI_CHECK(MPI_Iallgather(mine, 4, MPI_DOUBLE, all.data(), 4, MPI_DOUBLE, servers_.comm(), &req));
    coll::wait(req);
    for (std::size_t r = 0; r < std::size_t(servers_.size()); ++r) {
      const std::string j = std::to_string(int(all[4 * r]));
      meta.numbers["loss_scale.shard" + j] = all[4 * r + 1];
      meta.numbers["loss_scale_growth_tracker.shard" + j] = all[4 * r + 2];
      meta.numbers["skipped_steps.shard" + j] = all[4 * r + 3];
    }
  }
  meta.model = cx_.model_name;
  meta.config_toml = cx_.config_toml;
  meta.strings["strategy"] = "ps";
  meta.strings["ps_mode"] = name(o.mode);
  const std::string path = io::checkpoint_path(o.checkpoint_dir, meta.step);
  io::write_checkpoint(servers_.comm(), path, meta, tensors, parts, sizeof(Wide) == 4);
  if (servers_.rank() == 0) io::prune_checkpoints(o.checkpoint_dir, o.checkpoint_keep);
  ++stats_.checkpoints;
  if (servers_.rank() == 0)
    cx_.events.push_back(log_event(cx_.now(), EventKind::Checkpoint, cx_.rank(), meta.step, path));
}

template <class T>
void Server<T>::on_push(int from, const Header& h) {
  const auto& L = cx_.layout;
  const int j = int(h.i(1));
  Shard* s = shard(j);
  Contribution c;
  c.worker = from;
  c.clock = h.i(2);
  c.version_read = h.i(3);
  c.step = h.i(4);
  c.first = h.i(5);
  c.count = h.i(6);
  c.kind = int(h.i(7));
  c.steps = std::max<std::int64_t>(1, h.i(8));
  c.loss_scale = h[9] > 0 ? h[9] : 1.0;
  const int wi = L.worker_index(from);
  bool drop = !s || (!s->primary && !s->incoming);
  if (!drop && cx_.members.removed(from) && c.clock >= cx_.members.removed_from(from)) drop = true;
  if (!drop && synchronous(cx_.opt.mode) && c.clock < s->version) drop = true;  // already applied (re-sent)
  if (!drop && !synchronous(cx_.opt.mode) && c.clock < s->applied[std::size_t(wi)]) drop = true;
  const std::int64_t size = L.shard_size(j);
  if (s && !s->free_buffers.empty()) {
    c.data = s->free_buffers.back();
    s->free_buffers.pop_back();
  } else {
    c.data = host_buffer<HostView>("comm/ps.push", size);
  }
  for (int p : L.shard_pieces(j)) {
    const auto& pc = L.pieces()[std::size_t(p)];
    c.ids.push_back(cx_.mb.recv_data(from, L.push_tag(p), c.data.data() + (pc.begin - L.shard(j).first), pc.size(),
                                     coll::datatype_of<T>()));
  }
  c.discard = drop;
  if (drop) ++stats_.discarded;
  if (!s) {  // not a shard of this server: received and dropped
    orphans_.emplace_back(c.data, c.ids);
    return;
  }
  const Key key = synchronous(cx_.opt.mode) ? Key{c.clock, from, c.kind} : Key{s->arrivals++, from, c.kind};
  if (s->pending.count(key)) {  // the same push again (re-sent after a promotion): keep the first
    c.discard = true;
    ++stats_.discarded;
    s->pending.emplace(Key{-1 - s->arrivals++, from, c.kind}, std::move(c));
    return;
  }
  s->pending.emplace(key, std::move(c));
}

template <class T>
void Server<T>::on_header(int from, const Header& h) {
  const auto& L = cx_.layout;
  switch (h.type()) {
    case kPush: on_push(from, h); break;
    case kPull: {
      Shard* s = shard(int(h.i(1)));
      if (s) s->pulls.push_back({from, h.i(2), h.i(3), h.i(4) != 0});
      break;
    }
    case kRepl: {
      Shard* s = shard(int(h.i(1)));
      PARTRAIN_REQUIRE(s && !s->primary, "a replicated update for a shard this server does not back up");
      auto buf = host_buffer<HostM>("comm/ps.replica", s->size);
      const int id = cx_.mb.recv_data(from, L.repl_tag(s->j), buf.data(), s->size, coll::datatype_of<Wide>());
      s->repl_in.push_back({h, from, buf, id});
      break;
    }
    case kAck: {
      Shard* s = shard(int(h.i(1)));
      if (s) --s->unacked;
      break;
    }
    case kMigrate: {
      Shard* s = shard(int(h.i(1)));
      PARTRAIN_REQUIRE(s && s->incoming, "a migrated shard this server does not wait for");
      migrate_in(*s, from, h);
      break;
    }
    case kJoinHold:  // the coordinator chooses a spare's join clock: no update until it is announced
      hold_join_ = true;
      cx_.mb.send(from, Header(kJoinHeld, {double(version())}));
      break;
    case kJoin:
    case kCoordinator: hold_join_ = false; break;
    default: break;
  }
}

template <class T>
bool Server<T>::nonfinite(const HostM& grad) {
  if constexpr (!std::is_same_v<T, fp16>) {
    (void)grad;
    return false;
  } else {
    const Wide* g = grad.data();
    for (std::int64_t i = 0; i < std::int64_t(grad.size()); ++i)
      if (g[i] - g[i] != Wide(0)) return true;  // inf − inf and NaN − NaN are NaN
    return false;
  }
}

template <class T>
void Server<T>::update(Shard& s, const HostM& grad, int worker_index, std::int64_t samples, std::int64_t clock,
                       Wide grad_scale, bool skip) {
  const auto& o = cx_.opt;
  const int b = cx_.layout.backup_of(s.j);
  if (s.primary && o.backup && b != cx_.rank() && !cx_.members.server_dead(b)) {
    auto copy = host_buffer<HostM>("comm/ps.replica", s.size);
    Kokkos::deep_copy(copy, grad);
    const double steps = s.opt ? double(s.opt->steps_taken() + (skip ? 0 : 1)) : 0.0;
    cx_.mb.send(b, Header(kRepl, {double(s.j), double(s.version + 1), steps, double(worker_index),
                                  double(s.tickets), double(clock), skip ? 1.0 : 0.0, double(grad_scale)}));
    cx_.mb.send_data(b, cx_.layout.repl_tag(s.j), copy.data(), s.size, coll::datatype_of<Wide>());
    s.repl_out.push_back(copy);
    ++s.unacked;
  }
  if (std::is_same_v<T, fp16>) s.scaler.update(skip);
  if (skip) {  // fp16 found inf/NaN: GradScaler's skipped step (the optimizer's step count does not move)
    if (s.primary) ++stats_.skipped;
  } else if (o.mode == Mode::Local) {
    Wide* p = s.params.data();
    const Wide* d = grad.data();
    for (std::int64_t i = 0; i < s.size; ++i) p[i] += d[i];
  } else if constexpr (is_half_v<T>) {  // the fp32 update, and its rounded values for the pulls, in one pass
    s.opt->begin_step();
    s.opt->update_mixed(s.params, grad, 0, grad_scale, s.half);
  } else {
    s.opt->begin_step();
    s.opt->update(s.params, grad, 0);
  }
  ++s.version;
  if (worker_index >= 0) ++s.applied[std::size_t(worker_index)];
  if (s.primary) {
    ++stats_.updates;
    stats_.samples += samples;
    stats_.last_update_s = cx_.now();
  }
}

template <class T>
void Server<T>::apply_sync(Shard& s) {
  const auto& o = cx_.opt;
  const auto& M = cx_.members;
  const std::int64_t total = o.mode == Mode::Local ? (cx_.train.steps + o.local_steps - 1) / o.local_steps : cx_.train.steps;
  for (;;) {
    const std::int64_t c = s.version;
    if (c >= total) return;
    if (s.until >= 0 && c >= s.until) return;  // the shard moves to its joining server at this clock
    if (s.primary && ckpt_at_ > 0 && !checkpoints_off_ && c >= ckpt_at_) return;  // the checkpoint's clock first
    std::vector<int> members = M.members_at(c), survivors;
    for (int w : members)
      if (!(M.removed(w) && M.removed_from(w) <= c)) survivors.push_back(w);
    if (survivors.empty()) return;
    std::vector<Key> keys;
    for (int w : survivors) keys.emplace_back(c, w, 0);
    if (o.mode != Mode::Local)
      for (int d : members)
        if (M.removed(d) && M.removed_from(d) == c)
          for (int w : survivors) keys.emplace_back(c, w, d + 1);
    std::sort(keys.begin(), keys.end());
    for (const auto& k : keys) {
      auto it = s.pending.find(k);
      if (it == s.pending.end()) return;
      for (int id : it->second.ids)
        if (!cx_.mb.received(id)) return;
    }
    // Every contribution of clock c is in: their sum (local: the sample-weighted mean) in worker order.
    if (s.acc.size() == 0) s.acc = host_buffer<HostM>("comm/ps.sum", s.size);
    HostM acc = s.acc;  // in fp32 for a 16-bit model: each contribution widened, summed in fp32
    std::int64_t samples = 0, oldest = s.version;
    for (const auto& k : keys) samples += s.pending.at(k).count;
    bool first = true;
    for (const auto& k : keys) {
      const auto& ct = s.pending.at(k);
      oldest = std::min(oldest, ct.version_read);
      const T* d = ct.data.data();
      Wide* a = acc.data();
      if (o.mode == Mode::Local) {
        const Wide wgt = Wide(double(ct.count) / double(samples));
        for (std::int64_t i = 0; i < s.size; ++i) a[i] = (first ? Wide(0) : a[i]) + wgt * Wide(d[i]);
      } else if (first) {
        for (std::int64_t i = 0; i < s.size; ++i) a[i] = Wide(d[i]);
      } else {
        for (std::int64_t i = 0; i < s.size; ++i) a[i] += Wide(d[i]);
      }
      first = false;
    }
    if (s.primary) ++stats_.staleness[s.version - oldest];
    // fp16: the contributions of a clock were scaled alike (the workers took the same smallest scale); one that was
    // not is brought to the first one's scale before the sum is unscaled
    const double used = s.pending.at(keys.front()).loss_scale;
    for (const auto& k : keys)
      if (const double ls = s.pending.at(k).loss_scale; ls != used) {
        const Wide r = Wide(used / ls);
        const T* d = s.pending.at(k).data.data();
        for (std::int64_t i = 0; i < s.size; ++i) acc.data()[i] += (r - Wide(1)) * Wide(d[i]);
      }
    if (cx_.dump && c + 1 == total && s.primary) {  // the gradient as the update applies it (unscaled)
      s.dump_params = host_buffer<HostM>("params/ps.dump", s.size);
      s.dump_grad = host_buffer<HostM>("grads/ps.dump", s.size);
      Kokkos::deep_copy(s.dump_params, s.params);
      const Wide inv = Wide(1.0 / used);
      for (std::int64_t i = 0; i < s.size; ++i) s.dump_grad.data()[i] = acc.data()[i] * inv;
    }
    update(s, acc, -1, samples, c, Wide(1.0 / used), nonfinite(acc));
    for (const auto& k : keys) {
      s.free_buffers.push_back(s.pending.at(k).data);
      s.pending.erase(k);
    }
  }
}

template <class T>
void Server<T>::apply_async(Shard& s) {
  const auto& M = cx_.members;
  for (auto it = s.pending.begin(); it != s.pending.end();) {
    auto& ct = it->second;
    bool complete = true;
    for (int id : ct.ids) complete = complete && cx_.mb.received(id);
    if (!complete) {
      ++it;
      continue;
    }
    if (!ct.discard && M.removed(ct.worker) && ct.clock >= M.removed_from(ct.worker)) ct.discard = true;
    if (!ct.discard && s.primary && ckpt_at_ > 0 && !checkpoints_off_ && s.version >= ckpt_at_) {
      ++it;  // the next checkpoint's clock: the rest waits until it is written
      continue;
    }
    if (!ct.discard) {
      ++stats_.staleness[s.version - ct.version_read];
      if constexpr (is_half_v<T>) {  // the 16-bit push widened: the update and its replica read fp32
        if (s.acc.size() == 0) s.acc = host_buffer<HostM>("comm/ps.sum", s.size);
        for (std::int64_t i = 0; i < s.size; ++i) s.acc.data()[i] = Wide(ct.data.data()[i]);
        update(s, s.acc, cx_.layout.worker_index(ct.worker), ct.count, ct.clock, Wide(1.0 / ct.loss_scale),
               nonfinite(s.acc));
      } else {
        update(s, ct.data, cx_.layout.worker_index(ct.worker), ct.count, ct.clock);
      }
      s.steps[std::size_t(cx_.layout.worker_index(ct.worker))] += ct.steps;
    }
    s.free_buffers.push_back(ct.data);
    it = s.pending.erase(it);
  }
}

template <class T>
void Server<T>::answer_pulls(Shard& s) {
  if (!s.primary || s.unacked > 0) return;
  const auto& o = cx_.opt;
  const auto& L = cx_.layout;
  const auto& M = cx_.members;
  std::int64_t slowest = kNoSlowest;
  for (int w : M.active()) slowest = std::min(slowest, s.applied[std::size_t(L.worker_index(w))]);
  for (auto it = s.pulls.begin(); it != s.pulls.end();) {
    auto& p = *it;
    if (M.removed(p.worker)) {
      it = s.pulls.erase(it);
      continue;
    }
    const std::int64_t own = s.applied[std::size_t(L.worker_index(p.worker))];
    const PullVerdict v = pull_verdict(o.mode, o.staleness, s.version, own, p.pushes, p.clock, slowest);
    if (v.held_by_bound) {
      if (!p.held) ++stats_.bound_waits;
      p.held = true;
    }
    if (!v.answer) {
      ++it;
      continue;
    }
    const std::int64_t gap = clock_gap(o.mode, p.clock, slowest);
    stats_.max_gap = std::max(stats_.max_gap, gap);
    double ticket = -1;
    if (p.ticket) {
      const std::int64_t budget = cx_.train.steps * L.workers();
      if (s.tickets < budget) ticket = double(s.tickets++);
    }
    // Synchronous modes send the shard itself: it changes only once every worker has pushed the next clock, which
    // a worker does only after receiving all of this reply. Asynchronous ones send a snapshot of this version.
    const HostView& shard16 = [&]() -> const HostView& {  // what a pull sends: the shard, or its 16-bit copy
      if constexpr (is_half_v<T>) return s.half;
      else return s.params;
    }();
    const T* src = shard16.data();
    if (!synchronous(o.mode)) {
      if (s.snaps.empty() || s.snaps.back().version != s.version) {
        typename Shard::Snap sn{s.version, host_buffer<HostView>("comm/ps.snapshot", s.size), {}};
        Kokkos::deep_copy(sn.data, shard16);
        s.snaps.push_back(std::move(sn));
      }
      s.snaps.back().dests.push_back(p.worker);
      src = s.snaps.back().data.data();
    }
    // The reply says how many membership changes (removals, joins) the server knew: the worker splits the next
    // clock's data only once it knows as many (a coordinator's message and a server's may arrive in either order).
    std::int64_t fastest = 0;
    for (auto st : s.steps) fastest = std::max(fastest, st);
    cx_.mb.send(p.worker, Header(kPullReply, {double(s.j), double(s.version), ticket, double(gap),
                                              double(M.changes()), double(fastest), s.scaler.scale()}));
    for (int k : L.shard_pieces(s.j)) {
      const auto& pc = L.pieces()[std::size_t(k)];
      cx_.mb.send_data(p.worker, L.pull_tag(k), src + (pc.begin - s.begin), pc.size(), coll::datatype_of<T>());
    }
    it = s.pulls.erase(it);
  }
  while (s.snaps.size() > 1) {  // older snapshots go once their sends are complete
    bool busy = false;
    for (int d : s.snaps.front().dests) busy = busy || cx_.mb.sends_to(d) > 0;
    if (busy) break;
    s.snaps.pop_front();
  }
}

template <class T>
void Server<T>::replicate_in(Shard& s) {
  while (!s.repl_in.empty() && cx_.mb.received(s.repl_in.front().id)) {
    auto& r = s.repl_in.front();
    const bool skip = r.h[7] != 0;
    if (std::is_same_v<T, fp16>) s.scaler.update(skip);
    if (skip) {  // the primary skipped it (fp16 inf/NaN): nothing to apply
    } else if (cx_.opt.mode == Mode::Local) {
      for (std::int64_t i = 0; i < s.size; ++i) s.params.data()[i] += r.data.data()[i];
    } else if constexpr (is_half_v<T>) {  // the primary's update, with the same code: bit-identical state
      s.opt->begin_step();
      s.opt->update_mixed(s.params, r.data, 0, Wide(r.h[8]), s.half);
    } else {
      s.opt->begin_step();
      s.opt->update(s.params, r.data, 0);
    }
    s.version = r.h.i(2);
    s.tickets = r.h.i(5);
    if (r.h.i(4) >= 0) ++s.applied[std::size_t(r.h.i(4))];
    else std::fill(s.applied.begin(), s.applied.end(), s.version);
    cx_.mb.send(r.from, Header(kAck, {double(s.j), double(s.version)}));
    s.repl_in.pop_front();
  }
}

template <class T>
void Server<T>::migrate_out(Shard& s) {
  // Every clock before the join's is applied (and no push of a later one comes here): the state goes, whole.
  const int to = s.migrate_to;
  const double ms = s.opt && s.opt->m().size() ? 1 : 0, vs = s.opt && s.opt->v().size() ? 1 : 0;
  cx_.mb.send(to, Header(kMigrate, {double(s.j), double(s.version), s.opt ? double(s.opt->steps_taken()) : 0.0,
                                    double(s.tickets), s.scaler.scale(), double(s.scaler.growth_tracker()),
                                    double(s.scaler.skipped()), ms, vs}));
  const int tag = cx_.layout.repl_tag(s.j);
  cx_.mb.send_data(to, tag, s.params.data(), s.size, coll::datatype_of<Wide>());
  if (ms > 0) cx_.mb.send_data(to, tag, s.opt->m().data(), s.size, coll::datatype_of<Wide>());
  if (vs > 0) cx_.mb.send_data(to, tag, s.opt->v().data(), s.size, coll::datatype_of<Wide>());
  s.in_counts.clear();
  for (auto a : s.applied) s.in_counts.push_back(double(a));
  for (auto a : s.steps) s.in_counts.push_back(double(a));
  cx_.mb.send_data(to, tag, s.in_counts.data(), std::int64_t(s.in_counts.size()), coll::DataType::Double);
  s.moved = true;  // the buffers stay as they are until the sends complete (nothing changes them any more)
  s.primary = false;
  s.pulls.clear();
}

template <class T>
void Server<T>::migrate_in(Shard& s, int from, const Header& h) {
  const int tag = cx_.layout.repl_tag(s.j);
  s.in_h = h;
  s.in_from = from;
  s.in_ids.push_back(cx_.mb.recv_data(from, tag, s.params.data(), s.size, coll::datatype_of<Wide>()));
  if (h[8] > 0) s.in_ids.push_back(cx_.mb.recv_data(from, tag, s.opt->m().data(), s.size, coll::datatype_of<Wide>()));
  if (h[9] > 0) s.in_ids.push_back(cx_.mb.recv_data(from, tag, s.opt->v().data(), s.size, coll::datatype_of<Wide>()));
  s.in_counts.assign(2 * s.applied.size(), 0.0);
  s.in_ids.push_back(
      cx_.mb.recv_data(from, tag, s.in_counts.data(), std::int64_t(s.in_counts.size()), coll::DataType::Double));
}

template <class T>
bool Server<T>::migrated_in(Shard& s) {
  if (s.in_ids.empty()) return false;
  for (int id : s.in_ids)
    if (!cx_.mb.received(id)) return false;
  const Header& h = s.in_h;
  s.version = h.i(2);
  if (s.opt) s.opt->set_steps(h.i(3));
  s.tickets = h.i(4);
  s.scaler.restore(h[5], h.i(6), h.i(7));
  const std::size_t W = s.applied.size();
  for (std::size_t w = 0; w < W; ++w) {
    s.applied[w] = std::int64_t(s.in_counts[w]);
    s.steps[w] = std::int64_t(s.in_counts[W + w]);
  }
  refresh_half(s);
  s.incoming = false;
  s.primary = true;
  s.in_ids.clear();
  cx_.events.push_back(log_event(cx_.now(), EventKind::ServerJoined, cx_.rank(), s.version,
                                 "shard " + std::to_string(s.j) + " moved here from server " + std::to_string(s.in_from) +
                                     " at update " + std::to_string(s.version) +
                                     " (values, optimizer state, counts); its queued pulls and pushes go on"));
  return true;
}

template <class T>
void Server<T>::progress(Shard& s) {
  if (s.incoming && !migrated_in(s)) return;  // pulls and pushes for the shard queue until it is here
  if (s.moved) return;
  if (!s.primary) {
    replicate_in(s);
    if (cx_.members.owner(s.j) == cx_.rank() && s.repl_in.empty()) {  // promoted
      s.primary = true;
      checkpoints_off_ = true;
    }
    return;
  }
  if (s.unacked > 0 && cx_.members.server_dead(cx_.layout.backup_of(s.j))) s.unacked = 0;  // no backup to wait for
  // held while the servers agree on a checkpoint (what it stores is the clock it names) and while a join's clock is
  // chosen
  if (!hold_ && !hold_join_ && !cx_.coord.holding()) {
    if (synchronous(cx_.opt.mode)) apply_sync(s);
    else apply_async(s);
  }
  // Contributions that will never be applied (a removed worker's, duplicates) go once received.
  for (auto it = s.pending.begin(); it != s.pending.end();) {
    auto& ct = it->second;
    if (cx_.members.removed(ct.worker) && ct.clock >= cx_.members.removed_from(ct.worker)) ct.discard = true;
    bool complete = true;
    for (int id : ct.ids) complete = complete && cx_.mb.received(id);
    if (ct.discard && complete) {
      s.free_buffers.push_back(ct.data);
      it = s.pending.erase(it);
    } else {
      ++it;
    }
  }
  if (s.migrate_to >= 0 && s.version >= s.until) {  // applied every clock before the join's
    bool earlier = false;
    for (const auto& [k, ct] : s.pending) earlier = earlier || (!ct.discard && ct.clock < s.until);
    if (!earlier && !hold_ && !hold_join_ && !cx_.coord.holding()) {
      answer_pulls(s);
      migrate_out(s);
      return;
    }
  }
  answer_pulls(s);
  if (s.unacked == 0 && cx_.mb.sends_to(cx_.layout.backup_of(s.j)) == 0) s.repl_out.clear();
}

template <class T>
void Server<T>::run() {
  const auto& o = cx_.opt;
  auto& mb = cx_.mb;
  std::vector<std::pair<int, Header>> in;
  const std::int64_t unit = synchronous(o.mode) ? 1 : cx_.layout.workers();
  std::int64_t& next_ckpt = ckpt_at_;
  next_ckpt = o.checkpoint_every > 0 ? (version() / (o.checkpoint_every * unit) + 1) * o.checkpoint_every * unit : -1;
  // As the lockstep apps, no checkpoint at the run's last version: there is nothing left to resume
  const std::int64_t k = o.mode == Mode::Local ? std::max<std::int64_t>(1, o.local_steps) : 1;
  const std::int64_t last = (cx_.train.steps + k - 1) / k * unit;
  auto before_last = [last](std::int64_t v) { return v < last ? v : std::int64_t(-1); };
  next_ckpt = before_last(next_ckpt);
  MPI_Request agree = MPI_REQUEST_NULL;
  for (;;) {
    in.clear();
    mb.poll(in);
    for (const auto& [from, h] : in) {
      cx_.coord.on_message(from, h);
      if (h.type() == kExit) cx_.exit_seen = true;
      cx_.members.apply(from, h);
      on_header(from, h);
    }
    for (auto& s : shards_) progress(*s);
    for (auto it = orphans_.begin(); it != orphans_.end();) {
      bool complete = true;
      for (int id : it->second) complete = complete && mb.received(id);
      it = complete ? orphans_.erase(it) : std::next(it);
    }
    for (int j = 0; j < cx_.layout.servers(); ++j)
      if (cx_.members.server_dead(j)) checkpoints_off_ = true;  // a checkpoint needs every server
    if (checkpoints_off_) hold_ = false;  // an agreement a lost server will never join is abandoned
    // Checkpoints: the servers first agree (a nonblocking barrier, serving meanwhile) that all reached the clock.
    if (next_ckpt > 0 && !checkpoints_off_ && agree == MPI_REQUEST_NULL && version() >= next_ckpt &&
        shards_.front()->unacked == 0) {
      PARTRAIN_REQUIRE(version() == next_ckpt, "checkpoint clock skipped");
      PARTRAIN_MPI_CHECK(MPI_Ibarrier(servers_.comm(), &agree));
      hold_ = true;
    }
    if (agree != MPI_REQUEST_NULL && !checkpoints_off_) {
      int flag = 0;
      PARTRAIN_MPI_CHECK(MPI_Test(&agree, &flag, MPI_STATUS_IGNORE));
      if (flag) {
        checkpoint(next_ckpt);
        next_ckpt = before_last(next_ckpt + o.checkpoint_every * unit);
        hold_ = false;
      }
    }
    const std::int64_t clock = clock_of(*shards_.front());
    if (clock != last_fault_clock_) {
      last_fault_clock_ = clock;
      o.faults.kill_if_planned(cx_.rank(), clock);
      if (o.faults.stalls(cx_.rank(), clock)) {
        stalled_ = true;
        cx_.events.push_back(log_event(cx_.now(), EventKind::Stalled, cx_.rank(), clock, "server goes silent"));
        cx_.stall_until_exit();
        break;
      }
    }
    if (std::is_same_v<T, fp16>) {  // the smallest primary shard's scale, for the summary
      double lowest = 0;
      for (const auto& s : shards_)
        if (s->primary) lowest = lowest > 0 ? std::min(lowest, s->scaler.scale()) : s->scaler.scale();
      if (lowest > 0) stats_.loss_scale = lowest;
    }
    if (cx_.exit_seen || cx_.coord.exit_sent()) {
      bool idle = true;
      for (auto& s : shards_) idle = idle && s->pending.empty() && s->unacked == 0 && s->repl_in.empty();
      idle = idle && orphans_.empty();
      if (idle) break;
    } else {
      cx_.coord.tick();
    }
    Mailbox::pause();
  }
}

template <class T>
std::vector<std::pair<std::int64_t, std::vector<double>>> Server<T>::primary_values(bool grads) const {
  std::vector<std::pair<std::int64_t, std::vector<double>>> out;
  if (stalled_) return out;
  for (const auto& s : shards_) {
    if (!s->primary) continue;
    const HostM& v = grads ? s->dump_grad : (s->dump_params.size() ? s->dump_params : s->params);
    if (!v.size()) continue;
    out.emplace_back(s->begin, std::vector<double>(v.data(), v.data() + v.size()));
  }
  return out;
}

template class Server<float>;
template class Server<double>;
template class Server<bf16>;
template class Server<fp16>;

}  // namespace partrain::parallel::ps
