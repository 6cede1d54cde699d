#include "partrain/parallel/ps/worker.hpp"

#include <time.h>

#include <algorithm>

#include "partrain/core/rng.hpp"
#include "partrain/core/timer.hpp"
#include "partrain/parallel/ps/rules.hpp"

namespace partrain::parallel::ps {

template <class T>
Worker<T>::Worker(Context& cx, models::Model<T>& model, const models::Dataset<T>& data)
    : cx_(cx), model_(model), data_(data) {
  const auto& L = cx.layout;
  hparams_ = Kokkos::create_mirror_view(Kokkos::HostSpace(), model.params().params());
  hgrads_ = Kokkos::create_mirror_view(Kokkos::HostSpace(), model.params().grads());
  alias_ = hparams_.data() == model.params().params().data();
  push_src_ = hgrads_.data();
  pull_.resize(std::size_t(L.shards()));
  unseen_.resize(std::size_t(L.shards()));
  resend_.assign(std::size_t(L.shards()), 0);
  push_target_.assign(std::size_t(L.shards()), -1);
  piece_id_.assign(L.pieces().size(), -1);
  piece_ready_.assign(L.pieces().size(), 0);
  if (cx.opt.mode == Mode::Local) {
    PARTRAIN_REQUIRE(!is_half_v<T>, "local SGD runs fp32 only (ps_config refuses it)");
    local_opt_ = std::make_unique<models::Optimizer<master_t<T>>>(cx.train.optimizer, model.params().numel());
    base_ = Kokkos::View<T*, Kokkos::HostSpace>("comm/ps.round_start", model.params().numel());
    delta_ = Kokkos::View<T*, Kokkos::HostSpace>("comm/ps.change", model.params().numel());
  }
  cx.coord.on_new_coordinator = [this] {
    if (done_) cx_.mb.send(cx_.members.coordinator(), Header(kDone, {double(cx_.rank())}));
    if (standby_) cx_.mb.send(cx_.members.coordinator(), Header(kJoinAsk, {double(cx_.rank())}));
  };
}

template <class T>
Worker<T>::~Worker() = default;

template <class T>
void Worker<T>::pump() {
  std::vector<std::pair<int, Header>> in;
  cx_.mb.poll(in);
  for (const auto& [from, h] : in) handle(from, h);
  for (std::size_t p = 0; p < piece_id_.size(); ++p)
    if (piece_id_[p] >= 0 && !piece_ready_[p] && cx_.mb.received(piece_id_[p])) piece_arrived(int(p));
  if (!in_backward_)
    for (int j = 0; j < cx_.layout.shards(); ++j)
      if (resend_[std::size_t(j)]) resend(j);
  for (auto it = retired_.begin(); it != retired_.end();) {
    bool busy = false;
    for (int d : it->dests) busy = busy || cx_.mb.sends_to(d) > 0;
    it = busy ? std::next(it) : retired_.erase(it);
  }
  cx_.coord.tick();
}

template <class T>
void Worker<T>::handle(int from, const Header& h) {
  const auto& L = cx_.layout;
  cx_.coord.on_message(from, h);
  cx_.members.apply(from, h);
  switch (h.type()) {
    case kPullReply: {
      const int j = int(h.i(1));
      Pull& p = pull_[std::size_t(j)];
      if (!p.requested || p.replied) break;  // a second answer (the old primary's): its data is drained
      p.replied = true;
      p.version = h.i(2);
      p.ticket_value = h[3];
      p.removals = h.i(5);
      p.fastest = h.i(6);
      p.loss_scale = h[7] > 0 ? h[7] : 1.0;
      for (int k : L.shard_pieces(j)) {
        const auto& pc = L.pieces()[std::size_t(k)];
        piece_id_[std::size_t(k)] =
            cx_.mb.recv_data(from, L.pull_tag(k), hparams_.data() + pc.begin, pc.size(), coll::datatype_of<T>());
      }
      // Pushes this reply contains are no longer needed for a resend.
      auto& u = unseen_[std::size_t(j)];
      const std::int64_t seen = synchronous(cx_.opt.mode) ? p.version : p.pushes;
      while (!u.empty() && u.front().h.i(2) < seen) {
        retired_.push_back(std::move(u.front()));
        u.pop_front();
      }
      break;
    }
    case kPromote: {
      const int j = int(h.i(1));
      if (pull_[std::size_t(j)].requested && !pull_[std::size_t(j)].replied) send_pull(j);
      if (!unseen_[std::size_t(j)].empty()) resend_[std::size_t(j)] = 1;
      break;
    }
    case kRemove: {
      const int w = int(h.i(1));
      if (w == cx_.rank()) removed_ = true;
      else if (cx_.opt.mode == Mode::Bsp || cx_.opt.mode == Mode::HalfSync) supp_pending_.emplace_back(w, h.i(2));
      break;
    }
    case kExit: cx_.exit_seen = true; break;
    default: break;
  }
}

template <class T>
template <class Pred>
void Worker<T>::wait_for(Pred done) {
  if (done()) return;
  const double t0 = wall_time_s();
  while (!done() && !removed_) {
    pump();
    Mailbox::pause();
  }
  const double dt = wall_time_s() - t0;
  wait_s_ += dt;
  phase_wait_ += dt;
}

template <class T>
void Worker<T>::send_pull(int j) {
  const Pull& p = pull_[std::size_t(j)];
  cx_.mb.send(cx_.members.owner_at(j, p.clock),
              Header(kPull, {double(j), double(p.clock), double(p.pushes), (p.ticket && j == 0) ? 1.0 : 0.0}));
}

template <class T>
void Worker<T>::pull_all(std::int64_t clock, bool ticket) {
  const auto& L = cx_.layout;
  for (int j = 0; j < L.shards(); ++j) {
    auto& p = pull_[std::size_t(j)];
    const std::int64_t version = p.version;
    p = Pull{};
    p.requested = true;
    p.clock = clock;
    p.pushes = pushes_;
    p.ticket = ticket;
    p.version = version;  // the last version seen, until the reply
    for (int k : L.shard_pieces(j)) {
      piece_id_[std::size_t(k)] = -1;
      piece_ready_[std::size_t(k)] = 0;
    }
    send_pull(j);
  }
}

template <class T>
void Worker<T>::wait_replies() {
  wait_for([&] {
    if (!supp_pending_.empty() && !in_backward_) supplements(pushes_ - 1);
    for (const auto& p : pull_)
      if (p.requested && !p.replied) return false;
    std::int64_t need = 0;
    for (const auto& p : pull_) need = std::max(need, p.removals);
    return cx_.members.changes() >= need;
  });
}

template <class T>
void Worker<T>::piece_arrived(int p) {
  const auto& pc = cx_.layout.pieces()[std::size_t(p)];
  if (!alias_) {
    const auto range = Kokkos::make_pair(pc.begin, pc.end);
    Kokkos::deep_copy(Kokkos::subview(model_.params().params(), range), Kokkos::subview(hparams_, range));
  }
  piece_ready_[std::size_t(p)] = 1;
}

template <class T>
void Worker<T>::wait_layer(std::size_t l) {
  wait_for([&] {
    for (int k : cx_.layout.layer_pieces(l))
      if (!piece_ready_[std::size_t(k)]) return false;
    return true;
  });
}

template <class T>
void Worker<T>::wait_all_pieces() {
  for (std::size_t l = 0; l < cx_.layout.layers(); ++l) wait_layer(l);
}

template <class T>
void Worker<T>::send_push_header(int j, std::int64_t clock, std::int64_t step, std::int64_t first, std::int64_t count,
                                 int kind, std::int64_t steps, std::int64_t version_read) {
  const int target = cx_.members.owner_at(j, clock);
  const double read = double(version_read >= 0 ? version_read : pull_[std::size_t(j)].version);
  const Header h(kPush, {double(j), double(clock), read, double(step), double(first), double(count), double(kind),
                         double(steps), loss_scale_});
  cx_.mb.send(target, h);
  push_target_[std::size_t(j)] = target;
  if (cx_.opt.backup)
    unseen_[std::size_t(j)].push_back({j, h, std::vector<T>(std::size_t(cx_.layout.shard_size(j))), {target}});
}

template <class T>
void Worker<T>::send_push_piece(int p) {
  const auto& L = cx_.layout;
  const auto& pc = L.pieces()[std::size_t(p)];
  const T* src = push_src_ + pc.begin;
  if (cx_.opt.backup) {  // the copy kept for a resend is what travels
    auto& d = unseen_[std::size_t(pc.shard)].back().data;
    T* dst = d.data() + (pc.begin - L.shard(pc.shard).first);
    std::copy(src, src + pc.size(), dst);
    src = dst;
  }
  cx_.mb.send_data(int(push_target_[std::size_t(pc.shard)]), L.push_tag(p), src, pc.size(), coll::datatype_of<T>());
}

template <class T>
void Worker<T>::resend(int j) {
  const auto& L = cx_.layout;
  resend_[std::size_t(j)] = 0;
  const int target = cx_.members.owner(j);
  for (auto& s : unseen_[std::size_t(j)]) {
    s.dests.push_back(target);
    cx_.mb.send(target, s.h);
    for (int k : L.shard_pieces(j)) {
      const auto& pc = L.pieces()[std::size_t(k)];
      cx_.mb.send_data(target, L.push_tag(k), s.data.data() + (pc.begin - L.shard(j).first), pc.size(),
                       coll::datatype_of<T>());
    }
  }
}

template <class T>
void Worker<T>::delays(std::int64_t clock) {
  const auto& o = cx_.opt;
  double ms = o.faults.slow_ms(cx_.rank(), clock);
  if (cx_.rank() == o.straggler) ms += o.straggler_ms;
  if (o.mode == Mode::HalfSync && o.jitter_ms > 0)
    ms += o.jitter_ms * CounterRng(0, "ps.jitter", std::uint64_t(cx_.rank())).uniform(std::uint64_t(clock));
  if (ms <= 0) return;
  // A slow worker is slow, not silent: it keeps answering while it sleeps.
  const double until = wall_time_s() + ms * 1e-3;
  while (wall_time_s() < until) {
    pump();
    const timespec ts{0, 200000};
    nanosleep(&ts, nullptr);
  }
}

template <class T>
double Worker<T>::compute(std::int64_t step, std::int64_t first, std::int64_t count, std::int64_t clock, int kind,
                          StepRecord* rec, bool push) {
  const auto& L = cx_.layout;
  const auto& o = cx_.opt;
  const bool local = o.mode == Mode::Local || !push;  // local mode and the delayed buffer push after the backward
  const bool wait_pieces = o.mode != Mode::Local;     // local mode waited for the whole pull at the round's start
  const std::int64_t rps = model_.rows_per_sample();
  // Sends still reading the gradient buffer finish before it is zeroed (they are, by now, to live servers).
  wait_for([&] {
    for (int j = 0; j < L.shards(); ++j) {
      const int t = push_target_[std::size_t(j)] >= 0 ? int(push_target_[std::size_t(j)]) : cx_.members.owner(j);
      if (!cx_.members.server_dead(t) && cx_.mb.sends_to(t) > 0) return false;
    }
    return true;
  });
  // fp16: the loss is scaled by the smallest of the shards' scales (their replies to this mini-batch's pulls); every
  // push says which, and the servers divide by it
  if (std::is_same_v<T, fp16>) {
    loss_scale_ = pull_.empty() ? 1.0 : pull_[0].loss_scale;
    for (const auto& p : pull_) loss_scale_ = std::min(loss_scale_, p.loss_scale);
  }
  double t_delay = 0;
  auto start_push = [&] {
    in_backward_ = true;
    if (kind == 0 && o.mode != Mode::Local) {
      const double t = wall_time_s();
      delays(clock);
      t_delay = wall_time_s() - t;
    }
    model_.params().zero_grad();
    push_src_ = hgrads_.data();
    if (!local)
      for (int j = 0; j < L.shards(); ++j) send_push_header(j, clock, step, first, count, kind);
  };
  auto push_layer = [&](std::size_t l) {
    if (local) return;
    if (!alias_)
      for (int k : L.layer_pieces(l)) {
        const auto& pc = L.pieces()[std::size_t(k)];
        const auto range = Kokkos::make_pair(pc.begin, pc.end);
        Kokkos::deep_copy(Kokkos::subview(hgrads_, range), Kokkos::subview(model_.params().grads(), range));
      }
    for (int k : L.layer_pieces(l)) send_push_piece(k);
  };
  double loss = 0;
  const double t0 = fenced_time_s();
  const double w0 = phase_wait_;
  if (count == 0) {  // a share of nothing (more workers than samples to redistribute): zeros
    start_push();
    for (std::size_t l = L.layers(); l-- > 0;) push_layer(l);
  } else {
    auto& batch = kind == 0 ? batch_ : supp_batch_;
    auto& ws = kind == 0 ? ws_ : supp_ws_;
    if (batch.samples != count) {
      batch = data_.allocate(count);
      ws = model_.make_workspace(count);
    }
    data_.fill(std::uint64_t(step), first, batch);
    typename models::Model<T>::Hooks hooks;
    hooks.before_forward = [&](std::size_t l) {
      if (wait_pieces && kind == 0) wait_layer(l);  // a supplement computes on the parameters of its clock, held already
    };
    hooks.before_backward = [&](std::size_t l) {
      if (l + 1 == model_.layers().size()) start_push();
    };
    hooks.backward_done = [&](std::size_t l) {
      push_layer(l);
      pump();
    };
    // The loss is a mean over the global batch's rows (the NMT task's real target tokens), or over the worker's own
    // rows in local mode.
    const auto global_rows = data_.loss_rows(std::uint64_t(step), 0, cx_.train.global_batch);
    const auto own_rows = data_.loss_rows(std::uint64_t(step), first, count);
    const double scale = o.mode == Mode::Local ? 1.0 / double(own_rows >= 0 ? own_rows : count * rps)
                                               : 1.0 / double(global_rows >= 0 ? global_rows : cx_.train.global_batch * rps);
    loss = model_.forward_backward(batch, ws, scale * loss_scale_, hooks);
  }
  in_backward_ = false;
  const double t1 = fenced_time_s();
  if (rec) {
    rec->phase("compute", (t1 - t0) - (phase_wait_ - w0) - t_delay);
    rec->phase("delay", t_delay);
  }
  const auto rows = count > 0 ? data_.loss_rows(std::uint64_t(step), first, count) : 0;
  items_.push_back({step, clock, loss, double(rows >= 0 ? rows : count * rps), wall_time_s() - cx_.t0, kind != 0});
  return loss;
}

template <class T>
void Worker<T>::supplements(std::int64_t clock) {
  // Shares of the slices of workers removed at `clock` (bsp, half_sync), once the own push of that clock is out.
  auto& M = cx_.members;
  for (auto it = supp_pending_.begin(); it != supp_pending_.end();) {
    const auto [dead, e] = *it;
    if (e != clock || pushes_ <= e) {
      if (e < clock) it = supp_pending_.erase(it);  // a clock already behind (cannot happen in bsp)
      else ++it;
      continue;
    }
    const auto members = M.members_at(e);
    std::vector<int> survivors;
    for (int w : members)
      if (!(M.removed(w) && M.removed_from(w) <= e)) survivors.push_back(w);
    const auto di = std::size_t(std::find(members.begin(), members.end(), dead) - members.begin());
    const auto me = std::size_t(std::find(survivors.begin(), survivors.end(), cx_.rank()) - survivors.begin());
    it = supp_pending_.erase(it);
    if (di >= members.size() || me >= survivors.size()) continue;
    const auto [fd, nd] = slice(cx_.train.global_batch, int(members.size()), int(di));
    const auto [f, n] = slice(nd, int(survivors.size()), int(me));
    compute(e, fd + f, n, e, dead + 1, nullptr);
    pushed_.emplace_back(e, n);
  }
}

template <class T>
void Worker<T>::finish() {
  if (!removed_) {
    wait_replies();
    wait_all_pieces();
  }
  say_done(!removed_);
}

template <class T>
void Worker<T>::say_done(bool tell) {
  done_ = true;
  if (tell) {  // to the coordinator, and to the servers (ssp's bound leaves out the workers that are done)
    const int c = cx_.members.coordinator();
    cx_.mb.send(c, Header(kDone, {double(cx_.rank())}));
    for (int j : cx_.layout.server_ranks())
      if (j != c) cx_.mb.send(j, Header(kDone, {double(cx_.rank())}));
  }
  while (!cx_.exit_seen) {
    pump();
    Mailbox::pause();
  }
}

template <class T>
bool Worker<T>::standby() {
  // A spare: announced to the coordinator, answering heartbeats, until it is a worker (a planned join, or admitted in
  // place of a removed worker) or the run ends.
  auto& M = cx_.members;
  if (!cx_.layout.spare(cx_.rank())) return true;
  standby_ = true;
  if (!M.joined(cx_.rank())) cx_.mb.send(M.coordinator(), Header(kJoinAsk, {double(cx_.rank())}));
  while (!M.joined(cx_.rank()) && !cx_.exit_seen) {
    pump();
    Mailbox::pause();
  }
  standby_ = false;
  if (!M.joined(cx_.rank())) return false;
  joined_at_ = std::max(cx_.first_step, M.joined_from(cx_.rank()));
  return joined_at_ < cx_.train.steps || cx_.opt.mode == Mode::Local;  // (a join past the run is never made)
}

template <class T>
void Worker<T>::run_sync() {
  auto& M = cx_.members;
  const std::int64_t B = cx_.train.global_batch;
  const std::int64_t c0 = std::max(cx_.first_step, joined_at_);
  pull_all(c0, false);
  for (std::int64_t c = c0; c < cx_.train.steps; ++c) {
    cur_clock_ = c;
    cx_.opt.faults.kill_if_planned(cx_.rank(), c);
    if (cx_.opt.faults.stalls(cx_.rank(), c)) {
      stalled_ = true;
      cx_.events.push_back(log_event(cx_.now(), EventKind::Stalled, cx_.rank(), c, "worker goes silent"));
      cx_.stall_until_exit();
      return;
    }
    StepRecord rec;
    const double t0 = fenced_time_s();
    phase_wait_ = 0;
    wait_replies();
    if (removed_) break;
    if (c == c0 && cx_.layout.spare(cx_.rank())) {  // the first clock it computes: the timeline's join
      bool planned = false;
      for (const auto& f : cx_.opt.faults.of(Fault::Join)) planned = planned || f.rank == cx_.rank();
      cx_.events.push_back(log_event(
          cx_.now(), EventKind::WorkerJoined, cx_.rank(), c,
          std::string(planned ? "planned (--inject join)" : "admitted in place of a removed worker") +
              "; spare " + std::to_string(cx_.rank()) + " pulled the parameters of clock " + std::to_string(c) +
              " and computes its slice from it on"));
    }
    const auto members = M.members_at(c);
    const int idx = int(std::find(members.begin(), members.end(), cx_.rank()) - members.begin());
    const auto [first, count] = slice(B, int(members.size()), idx);
    rec.loss = compute(c, first, count, c, 0, &rec);
    pushes_ = c + 1;
    pushed_.emplace_back(c, count);
    cx_.coord.report(c, pushes_);
    supplements(c);
    pull_all(c + 1, false);
    rec.time_s = fenced_time_s() - t0;
    rec.phase("wait_pull", phase_wait_);
    rec.phase("optimizer", 0.0);
    records_.push_back(rec);
  }
  finish();
}

template <class T>
void Worker<T>::flush_delayed() {
  const auto& L = cx_.layout;
  if (held_steps_ == 0) return;
  push_src_ = held_.data();
  for (int j = 0; j < L.shards(); ++j)
    send_push_header(j, pushes_, held_step_, held_first_, held_samples_, 0, held_steps_, held_version_[std::size_t(j)]);
  for (std::size_t p = 0; p < L.pieces().size(); ++p) send_push_piece(int(p));
  pushed_.emplace_back(pushes_, held_samples_);
  ++pushes_;
  cx_.coord.report(pushes_ - 1, pushes_);
  held_steps_ = held_samples_ = 0;
}

template <class T>
void Worker<T>::run_async() {
  const auto& L = cx_.layout;
  const std::int64_t B = cx_.train.global_batch;
  pushes_ = cx_.first_step;
  pull_all(pushes_, true);
  for (;;) {
    const std::int64_t c = pushes_;
    cur_clock_ = c;
    cx_.opt.faults.kill_if_planned(cx_.rank(), c);
    if (cx_.opt.faults.stalls(cx_.rank(), c)) {
      stalled_ = true;
      cx_.events.push_back(log_event(cx_.now(), EventKind::Stalled, cx_.rank(), c, "worker goes silent"));
      cx_.stall_until_exit();
      return;
    }
    StepRecord rec;
    const double t0 = fenced_time_s();
    phase_wait_ = 0;
    wait_replies();
    if (removed_) break;
    const double t = pull_[0].ticket_value;
    if (t < 0) {
      if (held_steps_ > 0) {  // what the delayed buffer still holds goes before the end
        flush_delayed();
        pull_all(pushes_, true);
        wait_replies();
      }
      break;
    }
    const std::int64_t ticket = std::int64_t(t), W = L.workers();
    const auto [first, count] = slice(B, int(W), int(ticket % W));
    const int D = cx_.opt.delay_buffer;
    if (D == 0) {
      rec.loss = compute(ticket / W, first, count, c, 0, &rec);
      pushes_ = c + 1;
      pushed_.emplace_back(c, count);
      cx_.coord.report(c, pushes_);
    } else {
      // The delayed buffer: the gradient joins what is held; it is pushed now unless this worker is more than D
      // mini-batches behind the fastest and holds at most D (so one push carries up to D + 1).
      rec.loss = compute(ticket / W, first, count, c, 0, &rec, false);
      ++steps_done_;
      if (!held_.size()) held_ = Kokkos::View<T*, Kokkos::HostSpace>("comm/ps.delayed", model_.params().numel());
      if (!alias_) Kokkos::deep_copy(hgrads_, model_.params().grads());
      if (held_steps_ == 0) {
        Kokkos::deep_copy(held_, hgrads_);
        held_step_ = ticket / W;
        held_first_ = first;
        held_version_.clear();
        for (const auto& p : pull_) held_version_.push_back(p.version);
      } else {
        T* h = held_.data();
        const T* g = hgrads_.data();
        using A = acc_t<T>;  // a 16-bit model's held gradients add in fp32, rounded once per mini-batch
        for (std::size_t i = 0; i < held_.size(); ++i) h[i] = T(A(h[i]) + A(g[i]));
      }
      ++held_steps_;
      held_samples_ += count;
      const std::int64_t lag = pull_[0].fastest - (steps_done_ - held_steps_);
      if (keep_holding(lag, held_steps_, D)) ++holds_;
      else flush_delayed();
    }
    pull_all(pushes_, true);
    rec.time_s = fenced_time_s() - t0;
    rec.phase("wait_pull", phase_wait_);
    rec.phase("optimizer", 0.0);
    records_.push_back(rec);
  }
  finish();
}

template <class T>
void Worker<T>::run_local() {
  auto& M = cx_.members;
  const auto& L = cx_.layout;
  const std::int64_t B = cx_.train.global_batch, k = cx_.opt.local_steps, steps = cx_.train.steps;
  const std::int64_t rounds = (steps + k - 1) / k, r0 = cx_.first_step / k;
  auto& params = model_.params();
  pull_all(r0, false);
  for (std::int64_t r = r0; r < rounds; ++r) {
    double t0 = fenced_time_s();
    phase_wait_ = 0;
    wait_replies();
    wait_all_pieces();
    if (removed_) break;
    Kokkos::deep_copy(base_, hparams_);
    const auto members = M.members_at(r);
    const int idx = int(std::find(members.begin(), members.end(), cx_.rank()) - members.begin());
    const auto [first, count] = slice(B, int(members.size()), idx);
    const std::int64_t last = std::min((r + 1) * k, steps);
    for (std::int64_t s = r * k; s < last; ++s) {
      cx_.opt.faults.kill_if_planned(cx_.rank(), s);
      if (cx_.opt.faults.stalls(cx_.rank(), s)) {
        stalled_ = true;
        cx_.events.push_back(log_event(cx_.now(), EventKind::Stalled, cx_.rank(), s, "worker goes silent"));
        cx_.stall_until_exit();
        return;
      }
      StepRecord rec;
      const double d0 = wall_time_s();
      delays(s);
      const double d = wall_time_s() - d0;
      rec.loss = compute(s, first, count, r, 0, &rec);
      const double o0 = fenced_time_s();
      if constexpr (!is_half_v<T>) local_opt_->step(params.params(), params.grads());
      const double o1 = fenced_time_s();
      rec.phases.clear();
      rec.phase("compute", (o0 - t0) - phase_wait_ - d);
      rec.phase("delay", d);
      if (s + 1 == last) {  // the round's change goes to the servers
        if (!alias_) Kokkos::deep_copy(hparams_, params.params());
        T* dl = delta_.data();
        const T* p = hparams_.data();
        const T* b = base_.data();
        using A = acc_t<T>;
        for (std::int64_t i = 0; i < params.numel(); ++i) dl[i] = T(A(p[i]) - A(b[i]));
        push_src_ = delta_.data();
        for (int j = 0; j < L.shards(); ++j) send_push_header(j, r, r * k, first, count * (last - r * k), 0);
        for (std::size_t p2 = 0; p2 < L.pieces().size(); ++p2) send_push_piece(int(p2));
        pushes_ = r + 1;
        pushed_.emplace_back(r, count * (last - r * k));
        cx_.coord.report(r, pushes_);
        pull_all(r + 1, false);
      }
      const double t1 = fenced_time_s();
      rec.time_s = t1 - t0;
      rec.phase("wait_pull", phase_wait_);
      rec.phase("optimizer", o1 - o0);
      records_.push_back(rec);
      t0 = t1;
      phase_wait_ = 0;
    }
  }
  finish();
}

template <class T>
void Worker<T>::run() {
  if (!standby()) {  // a spare the run never needed (or one that joined with nothing left to compute: done at once)
    say_done(cx_.members.joined(cx_.rank()));
    return;
  }
  switch (cx_.opt.mode) {
    case Mode::Asp:
    case Mode::Ssp: run_async(); break;
    case Mode::Local: run_local(); break;
    default: run_sync(); break;
  }
}

template <class T>
std::int64_t Worker<T>::pushes_kept() const {
  const std::int64_t from = cx_.members.removed_from(cx_.rank());
  std::int64_t n = 0;
  for (const auto& [c, s] : pushed_) n += (from < 0 || c < from) ? 1 : 0;
  return n;
}

template <class T>
std::int64_t Worker<T>::samples_pushed() const {
  const std::int64_t from = cx_.members.removed_from(cx_.rank());
  std::int64_t n = 0;
  for (const auto& [c, s] : pushed_)
    if (from < 0 || c < from) n += s;
  return n;
}

template class Worker<float>;
template class Worker<double>;
template class Worker<bf16>;
template class Worker<fp16>;

}  // namespace partrain::parallel::ps
