#include "partrain/parallel/zero/zero_trainer.hpp"

#include <algorithm>
#include <cstdio>

#include "partrain/collectives/wait.hpp"
#include "partrain/core/error.hpp"
#include "partrain/core/fault.hpp"
#include "partrain/core/log.hpp"
#include "partrain/core/timer.hpp"
#include "partrain/kernels/elementwise.hpp"
#include "partrain/kernels/gemm.hpp"
#include "partrain/kernels/pointwise.hpp"

namespace partrain::parallel::zero {
namespace {
template <class T>
View1<T> sub(const View1<T>& v, std::int64_t a, std::int64_t n) {
  return View1<T>(v.data() + a, n);
}
}  // namespace

template <class T>
struct ZeroTrainer<T>::Gathered {
  View1<T> buf;
  coll::Request req;
  enum { None, InFlight, Ready } state = None;
};

template <class T>
struct ZeroTrainer<T>::Bucket {
  View1<T> buf;                   ///< being accumulated by the backward
  std::vector<View1<T>> reducing; ///< handed to reduce-scatters in flight
};

template <class T>
ZeroTrainer<T>::ZeroTrainer(models::Model<T>& model, std::uint64_t seed, const models::Dataset<T>& data,
                            const models::TrainSpec& spec, coll::MpiCommunicator& dp, const ZeroOptions& opts)
    : model_(model), data_(data), spec_(spec), dp_(dp), opts_(opts), seed_(seed), scaler_(spec.loss_scale) {
  const int n = dp.size(), r = dp.rank(), st = opts.stage;
  local_ = share_of(spec.global_batch, n, r).count;  // B/n or B/n + 1
  first_ = share_of(spec.global_batch, n, r).first;
  model.build(seed, st < 3, st < 2);
  auto& ps = model.params();
  tied_ = model.tied_parameters();
  auto is_tied = [&](const std::string& name) { return std::find(tied_.begin(), tied_.end(), name) != tied_.end(); };
  std::vector<TensorRange> tensors;
  for (const auto& p : ps.infos()) tensors.push_back({p.name, p.offset, p.size, is_tied(p.name)});
  std::vector<Unit> units;
  const std::int64_t bucket = std::max<std::int64_t>(1, std::int64_t(opts.bucket_mib * 1048576 / sizeof(T)));
  std::vector<std::vector<TensorRange>> per_layer;  // the tensors each layer declared
  for (std::size_t i = 0; i < model.layers().size(); ++i) {
    per_layer.emplace_back();
    const auto [a, b] = model.declared_range(i);
    for (const auto& t : tensors)
      if (t.offset >= a && t.offset < b) per_layer.back().push_back(t);
  }
  if (st == 0) {
    units.push_back(Unit{0, ps.numel(), {}, false});
    for (const auto& t : tensors) units.back().tensors.push_back(t.name);
  } else if (st == 1) {  // buckets across layers: the full gradient buffer is there anyway
    units = tensor_buckets(tensors, bucket);
  } else if (st == 2) {  // buckets within a layer: its backward writes all of them, and they are freed together
    for (const auto& lt : per_layer)
      for (auto& u : tensor_buckets(lt, bucket)) units.push_back(std::move(u));
  } else {
    units = layer_units(per_layer);
  }
  layout_ = st == 0 ? ShardLayout(units, 1, 0) : ShardLayout(units, n, r);
  const std::size_t L = model.layers().size();
  producers_.assign(layout_.units().size(), {});
  layer_units_.assign(L, {});
  for (std::size_t i = 0; i < L; ++i)
    for (const auto& name : model.bound_parameters(i)) {
      const std::size_t u = layout_.unit_of(ps.info(name).offset);
      if (std::find(layer_units_[i].begin(), layer_units_[i].end(), u) == layer_units_[i].end())
        layer_units_[i].push_back(u);
      if (std::find(producers_[u].begin(), producers_[u].end(), i) == producers_[u].end()) producers_[u].push_back(i);
    }
  for (auto& p : producers_) std::sort(p.rbegin(), p.rend());
  batch_ = data.allocate(local_);
  ws_ = model.make_workspace(local_);
  const std::int64_t shard = layout_.shard_size();
  if (st >= 2) grad_shard_ = View1<T>("grads/shard", shard);
  for (const auto& u : layout_.units()) slot_elems_ = std::max(slot_elems_, u.size());
  gathered_.resize(layout_.units().size());
  buckets_.resize(layout_.units().size());
  for (auto& g : gathered_) g = std::make_unique<Gathered>();
  for (auto& b : buckets_) b = std::make_unique<Bucket>();
  // Optimizer state: in memory, in host memory, or in a file; at stage 3 the parameter shard (from the initial values
  // of this rank's blocks) in memory or in the file.
  std::vector<T> init;
  if (st == 3) {
    init.resize(std::size_t(shard));
    for (std::size_t u = 0; u < layout_.units().size(); ++u)
      ps.init_values(seed, layout_.block_begin(u), layout_.block_begin(u) + layout_.block_size(u),
                     init.data() + layout_.shard_offset(u));
  }
  const auto& oc = spec.optimizer;
  state_slabs_ = oc.kind == "sgd" ? (oc.momentum > 0 ? 1 : 0) : 2;
  std::vector<master_t<T>> m;  // a 16-bit run's master weights of this rank's blocks, unrounded from the seed
  if constexpr (is_half_v<T>) {
    m.resize(static_cast<std::size_t>(shard));
    for (std::size_t u = 0; u < layout_.units().size(); ++u)
      ps.init_values(seed, layout_.block_begin(u), layout_.block_begin(u) + layout_.block_size(u),
                     m.data() + layout_.shard_offset(u));
    if (opts.offload == "host") {
      host_master_ = decltype(host_master_)("optim/host.master", shard);
      std::copy(m.begin(), m.end(), host_master_.data());
    } else if (opts.offload != "file") {
      master_ = View1<master_t<T>>("optim/master", shard);
      auto h = Kokkos::create_mirror_view(master_);
      std::copy(m.begin(), m.end(), h.data());
      Kokkos::deep_copy(master_, h);
    }
  }
  if (opts.offload == "file") {
    const int slabs = state_slabs_ + (st == 3 || is_half_v<T> ? 1 : 0);
    if (slabs > 0) {
      file_ = std::make_unique<OffloadFile<M>>(opts.offload_dir, dp.rank(), shard, slabs,
                                               std::int64_t(opts.offload_buffer_mib * 1048576));
      if constexpr (is_half_v<T>) file_->write(slabs - 1, 0, shard, m.data());
      else if (st == 3) file_->write(slabs - 1, 0, shard, init.data());
      const std::int64_t probe = std::min<std::int64_t>(64 << 20, std::max<std::int64_t>(1 << 20, shard * slabs * std::int64_t(sizeof(M))));
      dir_rate_ = OffloadFile<M>::sequential_rate(opts.offload_dir, probe);
    }
  } else if (opts.offload == "host") {
    host_opt_ = std::make_unique<models::Optimizer<master_t<T>, Kokkos::HostSpace>>(oc, shard, "optim/host.");
  } else {
    opt_ = std::make_unique<models::Optimizer<master_t<T>>>(oc, shard);
  }
  if (st == 3 && !file_) {
    param_shard_ = View1<T>("params/shard", shard);
    auto h = Kokkos::create_mirror_view(param_shard_);
    std::copy(init.begin(), init.end(), h.data());
    Kokkos::deep_copy(param_shard_, h);
  }
  if (st == 0) reducer_ = std::make_unique<GradientReducer<T>>(model, dp, DpOptions{opts.algo, opts.bucket_mib, opts.overlap});
}

template <class T>
ZeroTrainer<T>::~ZeroTrainer() = default;

template <class T>
View1<T> ZeroTrainer<T>::pool_get(std::int64_t n, const char* label) {
  // Gathered layers ("params/gathered") and gradient buckets ("grads/bucket") are allocated when needed and freed when
  // done, so that the memory tracker's peak is what was in use at once; the trainer keeps the same count itself.
  // (glibc's dynamic mmap threshold serves them from the heap after the first step: no page faults once warm.)
  const bool params = std::string(label).rfind("params/", 0) == 0;
  auto& live = params ? live_param_bytes_ : live_grad_bytes_;
  live += n * std::int64_t(sizeof(T));
  auto& peak = params ? pool_param_bytes_ : pool_grad_bytes_;
  peak = std::max(peak, live);
  return View1<T>(Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string(label)), n);
}

template <class T>
void ZeroTrainer<T>::pool_put(const View1<T>& v) {
  (v.label().rfind("params/", 0) == 0 ? live_param_bytes_ : live_grad_bytes_) -= std::int64_t(v.extent(0) * sizeof(T));
}

template <class T>
std::vector<std::size_t> ZeroTrainer<T>::units_of_layer(std::size_t layer) const {
  return layer_units_[layer];
}

template <class T>
void ZeroTrainer<T>::bind_layer(std::size_t layer, bool) {
  model_.layers()[layer]->bind(model_.params());
}

// ---- stage 3: gathered parameters ---------------------------------------------------------------------------------

template <class T>
void ZeroTrainer<T>::gather(std::size_t u) {
  auto& g = *gathered_[u];
  if (g.state != Gathered::None) return;
  const auto& unit = layout_.units()[u];
  g.buf = pool_get(unit.size(), "params/gathered");
  T* mine = g.buf.data() + layout_.block_offset(u);
  if (file_) read_file_params(u, mine);  // the parameter slab
  else Kokkos::deep_copy(sub(g.buf, layout_.block_offset(u), layout_.block_size(u)),
                         sub(param_shard_, layout_.shard_offset(u), layout_.block_size(u)));
  g.req = dp_.allgather(mine, g.buf.data(), unit.size(), opts_.algo);  // in place: this rank's block is at its offset
  g.state = Gathered::InFlight;
}

template <class T>
void ZeroTrainer<T>::wait_gathered(std::size_t u) {
  auto& g = *gathered_[u];
  if (g.state == Gathered::None) gather(u);
  if (g.state == Gathered::InFlight) {
    const double t0 = wall_time_s();
    coll::WaitTurns turns("a layer's allgather (ZeRO-3)");
    while (!g.req.done()) {  // every request in flight is progressed: shm completes them in launch order
      progress();
      if (!g.req.done()) turns.turn();
    }
    gather_wait_s_ += wall_time_s() - t0;
    g.state = Gathered::Ready;
  }
  const auto& unit = layout_.units()[u];
  auto& ps = model_.params();
  for (const auto& name : unit.tensors) {
    const auto& info = ps.info(name);
    ps.set_param_view(name, sub(g.buf, info.offset - unit.begin, info.size));
  }
}

template <class T>
void ZeroTrainer<T>::release_params(std::size_t u) {
  auto& g = *gathered_[u];
  if (g.state == Gathered::None) return;
  while (!g.req.done()) progress();
  for (const auto& name : layout_.units()[u].tensors) model_.params().set_param_view(name, View1<T>());
  pool_put(g.buf);
  g.buf = View1<T>();
  g.state = Gathered::None;
}

// ---- gradients: buckets and reduce-scatters ------------------------------------------------------------------------

template <class T>
void ZeroTrainer<T>::ensure_grad_buffer(std::size_t u) {
  auto& b = *buckets_[u];
  if (b.buf.data()) return;
  const auto& unit = layout_.units()[u];
  b.buf = pool_get(unit.size(), "grads/bucket");
  Kokkos::deep_copy(b.buf, T(0));
  auto& ps = model_.params();
  for (const auto& name : unit.tensors) {
    const auto& info = ps.info(name);
    ps.set_grad_view(name, sub(b.buf, info.offset - unit.begin, info.size));
  }
}

template <class T>
void ZeroTrainer<T>::launch_reduce_scatter(std::size_t u) {
  const auto& unit = layout_.units()[u];
  if (opts_.stage == 1) {  // in place in the full gradient buffer: the reduced block lands at its offset
    T* g = model_.params().grads().data() + unit.begin;
    rs_inflight_.push_back({dp_.reduce_scatter(g, g, unit.size(), coll::ReduceOp::Sum, opts_.algo), u, rs_layer_});
    return;
  }
  auto& b = *buckets_[u];
  T* g = b.buf.data();
  b.reducing.push_back(b.buf);
  b.buf = View1<T>();
  for (const auto& name : unit.tensors) model_.params().set_grad_view(name, View1<T>());
  rs_inflight_.push_back({dp_.reduce_scatter(g, g, unit.size(), coll::ReduceOp::Sum, opts_.algo), u, rs_layer_});
}

template <class T>
void ZeroTrainer<T>::progress() {
  for (auto& g : gathered_)
    if (g->state == Gathered::InFlight) g->req.test();
  for (auto& r : ag_inflight_) r.test();
  // Completed reduce-scatters, in launch order: (stages 2, 3) add the reduced block to this rank's gradient shard.
  for (std::size_t i = 0; i < rs_inflight_.size();) {
    auto& req = rs_inflight_[i].req;
    const std::size_t u = rs_inflight_[i].unit;
    if (!req.test()) {
      ++i;
      continue;
    }
    if (opts_.stage >= 2) {
      auto& b = *buckets_[u];
      auto buf = b.reducing.front();
      b.reducing.erase(b.reducing.begin());
      auto src = sub(buf, layout_.block_offset(u), layout_.block_size(u));
      auto dst = sub(grad_shard_, layout_.shard_offset(u), layout_.block_size(u));
      kernels::accumulate("partrain::zero::accumulate", dst, src);
      // Freed where the backward would have waited for it (finish_reduce_scatters), not as soon as it is done: the
      // number of layers of buffers is then the same whatever the timing (two with overlap, one without).
      reduced_.push_back({rs_inflight_[i].layer, buf});
    }
    rs_inflight_.erase(rs_inflight_.begin() + std::ptrdiff_t(i));
  }
}

template <class T>
void ZeroTrainer<T>::finish_reduce_scatters(std::size_t launched_from) {
  // Waits for the reduce-scatters launched by the backward of a layer >= launched_from (all of them by default).
  auto pending = [&] {
    return std::any_of(rs_inflight_.begin(), rs_inflight_.end(),
                       [&](const InflightRs& r) { return r.layer >= launched_from; });
  };
  if (!pending()) return free_reduced(launched_from);
  const double t0 = wall_time_s();
  coll::WaitTurns turns("the gradients' reduce-scatters");
  while (pending()) {
    progress();
    if (pending()) turns.turn();
  }
  exposed_s_ += wall_time_s() - t0;
  free_reduced(launched_from);
}

template <class T>
void ZeroTrainer<T>::free_reduced(std::size_t launched_from) {
  for (std::size_t i = 0; i < reduced_.size();) {
    if (reduced_[i].first >= launched_from) {
      pool_put(reduced_[i].second);
      reduced_.erase(reduced_.begin() + std::ptrdiff_t(i));
    } else {
      ++i;
    }
  }
}

template <class T>
void ZeroTrainer<T>::finish_all_reduce_scatters() {
  coll::WaitTurns turns("the gradients' reduce-scatters");
  while (!rs_inflight_.empty()) {
    progress();
    if (!rs_inflight_.empty()) turns.turn();
  }
  free_reduced(0);
}

// ---- the update -----------------------------------------------------------------------------------------------------

/// This rank's parameters (gradients) of unit u's block: the full buffers (stages 0–2 parameters, 0–1 gradients) or
/// the shards.
template <class T>
View1<T> ZeroTrainer<T>::param_block(std::size_t u) const {
  return opts_.stage == 3 ? sub(param_shard_, layout_.shard_offset(u), layout_.block_size(u))
                          : sub(model_.params().params(), layout_.block_begin(u), layout_.block_size(u));
}
template <class T>
View1<T> ZeroTrainer<T>::grad_block(std::size_t u) const {
  return opts_.stage >= 2 ? sub(grad_shard_, layout_.shard_offset(u), layout_.block_size(u))
                          : sub(model_.params().grads(), layout_.block_begin(u), layout_.block_size(u));
}

template <class T>
template <class F>
void ZeroTrainer<T>::stream_file(const F& fn) {
  ++file_steps_;
  const std::size_t U = layout_.units().size();
  const double io0 = file_->io_wait_s();
  file_->stream([&](std::int64_t a, std::int64_t b, M* const* slabs) {
    for (std::size_t u = layout_.unit_at_shard(a); u < U && layout_.shard_offset(u) < b; ++u) {
      const std::int64_t lo = std::max(a, layout_.shard_offset(u)),
                         hi = std::min(b, layout_.shard_offset(u) + layout_.block_size(u));
      if (lo < hi) fn(u, lo - layout_.shard_offset(u), hi - lo, slabs, lo - a);
    }
  });
  offload_io_s_ += file_->io_wait_s() - io0;
}

template <class T>
void ZeroTrainer<T>::optimizer_step() {
  const int st = opts_.stage;
  auto pblock = [&](std::size_t u) { return param_block(u); };
  auto gblock = [&](std::size_t u) { return grad_block(u); };
  const std::size_t U = layout_.units().size();
  if constexpr (is_half_v<T>) {
    (void)st;
    PARTRAIN_REQUIRE(false, "optimizer_step on a 16-bit model (optimizer_step_mixed runs it)");
  } else if (opt_) {
    opt_->begin_step();
    for (std::size_t u = 0; u < U; ++u) opt_->update(pblock(u), gblock(u), layout_.shard_offset(u));
  } else if (host_opt_) {  // ZeRO-Offload: the state and the update in host memory (the same memory on a host build)
    host_opt_->begin_step();
    for (std::size_t u = 0; u < U; ++u) {
      auto p = pblock(u);
      auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p);
      auto hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), gblock(u));
      host_opt_->update(hp, hg, layout_.shard_offset(u));
      Kokkos::deep_copy(p, hp);
    }
  } else if (file_) {  // ZeRO-Infinity: stream the state (and at stage 3 the parameters) through the staging buffer
    const auto& oc = spec_.optimizer;
    using HV = Kokkos::View<T*, Kokkos::LayoutRight, Kokkos::HostSpace>;
    const int pslab = state_slabs_;
    stream_file([&](std::size_t u, std::int64_t off, std::int64_t len, M* const* slabs, std::int64_t at) {
      if constexpr (std::is_same_v<M, T>) {
        HV g = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), sub(gblock(u), off, len));
        HV p = st == 3 ? HV(slabs[pslab] + at, len)
                       : Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), sub(pblock(u), off, len));
        HV m = pslab > 0 ? HV(slabs[0] + at, len) : HV();
        HV v = pslab > 1 ? HV(slabs[1] + at, len) : HV();
        if (oc.kind == "sgd")
          kernels::sgd_step(p, g, m, kernels::SgdParams{oc.lr, oc.momentum, oc.weight_decay});
        else
          kernels::adam_step(p, g, m, v, kernels::AdamParams{oc.lr, oc.beta1, oc.beta2, oc.eps, oc.weight_decay, oc.kind == "adamw"},
                             file_steps_);
        if (st < 3) Kokkos::deep_copy(sub(pblock(u), off, len), p);
      }
    });
  } else {  // plain SGD offloaded to a file: no state at all
    const auto& oc = spec_.optimizer;
    for (std::size_t u = 0; u < U; ++u)
      kernels::sgd_step(pblock(u), gblock(u), View1<T>(), kernels::SgdParams{oc.lr, oc.momentum, oc.weight_decay});
  }
}

/// Mixed precision: this rank's blocks of the master weights updated from its 16-bit gradient blocks (times
/// 1/loss scale), the rounded values written into its 16-bit parameter blocks; fp16 first agrees over the group
/// whether any rank's blocks hold inf/NaN, and then every rank skips the step.
template <class T>
bool ZeroTrainer<T>::optimizer_step_mixed() {
  if constexpr (!is_half_v<T>) {
    return true;
  } else {
    auto pblock = [&](std::size_t u) { return param_block(u); };
    auto gblock = [&](std::size_t u) { return grad_block(u); };
    const std::size_t U = layout_.units().size();
    const double used = std::is_same_v<T, fp16> ? scaler_.scale() : 1.0;
    if (std::is_same_v<T, fp16>) {
      long long mine = 0, any = 0;
      for (std::size_t u = 0; u < U; ++u) mine += kernels::nonfinite_count(gblock(u));
      coll::allreduce(&mine, &any, 1, MPI_LONG_LONG, MPI_MAX, dp_.comm());
      if (!scaler_.update(any > 0)) return false;
    }
    const auto inv = master_t<T>(1.0 / used);
    if (opt_) {
      opt_->begin_step();
      for (std::size_t u = 0; u < U; ++u) {
        const std::int64_t off = layout_.shard_offset(u), n = layout_.block_size(u);
        opt_->update_mixed(sub(master_, off, n), gblock(u), off, inv, pblock(u));
      }
    } else if (host_opt_) {  // ZeRO-Offload: the 16-bit gradient block to host memory, the update there, the 16-bit weights back
      host_opt_->begin_step();
      for (std::size_t u = 0; u < U; ++u) {
        const std::int64_t off = layout_.shard_offset(u), n = layout_.block_size(u);
        auto p = pblock(u);
        auto hp = Kokkos::create_mirror_view(Kokkos::HostSpace(), p);
        auto hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), gblock(u));
        host_opt_->update_mixed(decltype(host_master_)(host_master_.data() + off, n), hg, off, inv, hp);
        Kokkos::deep_copy(p, hp);
      }
    } else {  // ZeRO-Infinity: the master weights and moments streamed through the staging buffer
      const auto& oc = spec_.optimizer;
      const int st = opts_.stage, pslab = state_slabs_;
      using HM = Kokkos::View<M*, Kokkos::LayoutRight, Kokkos::HostSpace>;
      using HT = Kokkos::View<T*, Kokkos::LayoutRight, Kokkos::HostSpace>;
      stream_file([&](std::size_t u, std::int64_t off, std::int64_t len, M* const* slabs, std::int64_t at) {
        HT g = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), sub(gblock(u), off, len));
        HM master(slabs[pslab] + at, len);
        HM m = pslab > 0 ? HM(slabs[0] + at, len) : HM();
        HM v = pslab > 1 ? HM(slabs[1] + at, len) : HM();
        auto update = [&](const auto& out) {
          if (oc.kind == "sgd")
            kernels::sgd_step(master, g, m, kernels::SgdParams{oc.lr, oc.momentum, oc.weight_decay}, inv, out);
          else
            kernels::adam_step(master, g, m, v,
                               kernels::AdamParams{oc.lr, oc.beta1, oc.beta2, oc.eps, oc.weight_decay, oc.kind == "adamw"},
                               file_steps_, inv, out);
        };
        if (st < 3) {  // the rounded weights into the 16-bit parameters (in place on a host build)
          auto p = Kokkos::create_mirror_view(Kokkos::HostSpace(), sub(pblock(u), off, len));
          update(p);
          Kokkos::deep_copy(sub(pblock(u), off, len), p);
        } else {  // stage 3's 16-bit blocks are read rounded from the master weights when gathered
          update(HM());
        }
      });
    }
    return true;
  }
}

/// This rank's 16-bit parameter blocks from its master weights (after a checkpoint's are read back); stages 0–2 then
/// allgather them (collective).
template <class T>
void ZeroTrainer<T>::refresh_params_from_master() {
  if constexpr (is_half_v<T>) {
    const int st = opts_.stage;
    for (std::size_t u = 0; u < layout_.units().size(); ++u) {
      const std::int64_t off = layout_.shard_offset(u), n = layout_.block_size(u);
      if (st == 3 && file_) continue;  // read from the master weights, rounded, when gathered
      auto p = param_block(u);
      auto h = Kokkos::create_mirror_view(Kokkos::HostSpace(), p);
      std::vector<M> m(static_cast<std::size_t>(n));
      read_master(off, n, m.data());
      for (std::int64_t i = 0; i < n; ++i) h(i) = T(m[std::size_t(i)]);
      Kokkos::deep_copy(p, h);
    }
    if (st == 1 || st == 2) allgather_params();
  }
}

template <class T>
void ZeroTrainer<T>::read_master(std::int64_t off, std::int64_t n, M* out) {
  if (master_.size()) {
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), sub(master_, off, n));
    std::copy(h.data(), h.data() + n, out);
  } else if (host_master_.size()) {
    std::copy(host_master_.data() + off, host_master_.data() + off + n, out);
  } else {
    file_->read(state_slabs_, off, n, out);
  }
}

template <class T>
void ZeroTrainer<T>::read_file_params(std::size_t u, T* out) {
  const std::int64_t off = layout_.shard_offset(u), n = layout_.block_size(u);
  if constexpr (is_half_v<T>) {
    std::vector<M> m(static_cast<std::size_t>(n));
    file_->read(state_slabs_, off, n, m.data());
    for (std::int64_t i = 0; i < n; ++i) out[i] = T(m[std::size_t(i)]);
  } else {
    file_->read(state_slabs_, off, n, out);
  }
}

template <class T>
void ZeroTrainer<T>::restore_numbers(const std::map<std::string, double>& numbers) {
  restore_scaler_of<T>(scaler_, numbers);
}

template <class T>
void ZeroTrainer<T>::allgather_params() {
  T* p = model_.params().params().data();
  for (std::size_t u = 0; u < layout_.units().size(); ++u) {
    const auto& unit = layout_.units()[u];
    ag_inflight_.push_back(dp_.allgather(p + layout_.block_begin(u), p + unit.begin, unit.size(), opts_.algo));
  }
  coll::WaitTurns turns("the parameters' allgathers");
  for (bool done = false; !done;) {
    progress();
    done = std::all_of(ag_inflight_.begin(), ag_inflight_.end(), [](const coll::Request& r) { return r.done(); });
    if (!done) turns.turn();
  }
  ag_inflight_.clear();
}

// ---- the step -------------------------------------------------------------------------------------------------------

template <class T>
StepRecord ZeroTrainer<T>::step(std::int64_t s, const BeforeUpdate& before_update) {
  const int st = opts_.stage;
  data_.fill(std::uint64_t(s), first_, batch_);
  coll::barrier(dp_.comm());
  exposed_s_ = gather_wait_s_ = 0;
  const double io0 = offload_io_s_;
  if (reducer_) reducer_->begin_step();
  const double t0 = fenced_time_s();
  straggle();  // --inject slow: this rank's compute is late
  double t_fwd = t0;
  model_.params().zero_grad();
  if (grad_shard_.size()) Kokkos::deep_copy(grad_shard_, T(0));
  const std::size_t L = model_.layers().size();
  typename models::Model<T>::Hooks hooks;
  hooks.forward_done = [&] { t_fwd = fenced_time_s(); };
  auto timed = [&](auto&& f) {
    const double h0 = fenced_time_s();
    f();
    exposed_s_ += wall_time_s() - h0;
  };
  auto needed_by = [&](std::size_t layer, std::size_t u) {
    return layer < L && std::find(layer_units_[layer].begin(), layer_units_[layer].end(), u) != layer_units_[layer].end();
  };
  // A unit's gradient is complete after its last producer's backward; a tied unit's each producer's part goes alone.
  auto complete_after = [&](std::size_t layer, std::size_t u) { return layout_.units()[u].tied || producers_[u].back() == layer; };
  if (st == 0) {
    hooks.backward_done = [&](std::size_t i) { reducer_->backward_done(i); };
  } else if (st == 1) {
    hooks.backward_done = [&](std::size_t i) {
      rs_layer_ = i;
      timed([&] {
        for (auto u : layer_units_[i])
          if (producers_[u].back() == i && opts_.overlap) launch_reduce_scatter(u);
        progress();
      });
    };
  } else {
    if (st == 3) {
      hooks.before_forward = [&](std::size_t i) {
        for (auto u : layer_units_[i]) wait_gathered(u);
        bind_layer(i, false);
        if (opts_.prefetch && i + 1 < L)
          for (auto u : layer_units_[i + 1]) gather(u);
      };
      hooks.after_forward = [&](std::size_t i) {
        if (i + 1 == L) return;  // the last layer's backward comes next: keep it
        for (auto u : layer_units_[i])
          if (!needed_by(i + 1, u)) release_params(u);
        progress();
      };
    }
    hooks.before_backward = [&](std::size_t i) {
      // At most two layers of gradient buffers: this layer's, and the previous layer's still reducing (one without
      // overlap: a layer's reduce-scatters end before the next layer's backward starts).
      finish_reduce_scatters(opts_.overlap ? i + 2 : i + 1);
      if (st == 3) {
        for (auto u : layer_units_[i]) wait_gathered(u);
        if (opts_.prefetch && i > 0)
          for (auto u : layer_units_[i - 1]) gather(u);
      }
      for (auto u : layer_units_[i]) ensure_grad_buffer(u);
      bind_layer(i, true);
    };
    hooks.backward_done = [&](std::size_t i) {
      rs_layer_ = i;
      timed([&] {
        for (auto u : layer_units_[i])
          if (complete_after(i, u)) launch_reduce_scatter(u);
        if (st == 3)
          for (auto u : layer_units_[i])
            if (!needed_by(i == 0 ? L : i - 1, u)) release_params(u);
        progress();
      });
    };
  }
  const double rows = double(spec_.global_batch * model_.rows_per_sample());
  const double loss_scale = std::is_same_v<T, fp16> ? scaler_.scale() : 1.0;
  const double local_loss = model_.forward_backward(batch_, ws_, loss_scale / rows, hooks);
  const double t_bwd = fenced_time_s();
  const double in_hooks = st == 0 ? reducer_->exposed_s() : exposed_s_;
  if (st == 0) {
    reducer_->finish();
  } else {
    const double c0 = fenced_time_s();
    if (st == 1 && !opts_.overlap)
      for (std::size_t u = 0; u < layout_.units().size(); ++u) launch_reduce_scatter(u);
    finish_all_reduce_scatters();
    exposed_s_ += wall_time_s() - c0;
  }
  model_.finalize_grads();
  const double t_comm = fenced_time_s();
  double global_loss = 0;
  coll::allreduce(&local_loss, &global_loss, 1, MPI_DOUBLE, MPI_SUM, dp_.comm());
  StepRecord rec;
  rec.loss = global_loss / rows;
  if (before_update) before_update(rec.loss);
  const double t_opt0 = fenced_time_s();
  bool applied = true;
  if constexpr (is_half_v<T>) applied = optimizer_step_mixed();
  else optimizer_step();
  log_.record(loss_scale, !applied);
  const double t_opt1 = fenced_time_s();
  if (st == 1 || st == 2) allgather_params();
  const double t_end = fenced_time_s();
  const double exposed = (st == 0 ? reducer_->exposed_s() : exposed_s_) + (t_end - t_opt1);
  rec.time_s = (t_comm - t0) + (t_end - t_opt0);
  rec.phase("forward", t_fwd - t0);
  rec.phase("backward", (t_bwd - t_fwd) - in_hooks);
  rec.phase("comm_exposed", exposed + gather_wait_s_);
  rec.phase("gather_exposed", gather_wait_s_);
  rec.phase("allgather", t_end - t_opt1);
  rec.phase("optimizer", t_opt1 - t_opt0);
  rec.phase("offload_io", offload_io_s_ - io0);
  rec.phase("busy", (t_bwd - t0) - in_hooks - gather_wait_s_ + (t_opt1 - t_opt0));
  ++steps_;
  counters_ = dp_.counters();
  return rec;
}

// ---- reporting ------------------------------------------------------------------------------------------------------

template <class T>
std::string ZeroTrainer<T>::describe() const {
  const auto& ps = model_.params();
  std::string s = "ZeRO stage " + std::to_string(opts_.stage) + " over " + std::to_string(dp_.size()) + " ranks, " +
                  std::to_string(ps.numel()) + " parameters (" + std::to_string(layout_.shard_size()) +
                  " in this rank's shard, " + std::to_string(layout_.units().size()) + " units), offload " + opts_.offload;
  if (opts_.offload == "host")
    s += std::is_same<MemSpace, Kokkos::HostSpace>::value
             ? " (host and device memory are one on this build: the optimizer stays where it was)"
             : " (optimizer state and update in host memory)";
  if (file_)
    s += " (" + file_->path() + ", " + std::to_string(file_->chunk_elements()) + "-element chunks, " +
         (file_->direct() ? "O_DIRECT" : "buffered: the filesystem refuses O_DIRECT") + ")";
  if (opts_.stage == 3) s += std::string(", prefetch ") + (opts_.prefetch ? "on" : "off");
  if (is_half_v<T>) s += ", " + precision_name<T>() + " with fp32 master weights sharded with the optimizer state";
  return s + ", " + std::to_string(local_) + " samples per rank";
}

template <class T>
std::vector<io::NamedTensor> ZeroTrainer<T>::gather_full(bool grads) {
  // Whole tensors from this rank's blocks: every unit allgathered (stages 1–3 hold only their blocks reduced).
  const int st = opts_.stage;
  auto& ps = model_.params();
  if constexpr (is_half_v<T>) return gather_full_mixed(grads);
  if (st == 0 || (!grads && st < 3)) return io::named_tensors(ps, grads);
  std::vector<T> full(std::size_t(ps.numel()));
  for (std::size_t u = 0; u < layout_.units().size(); ++u) {
    const auto& unit = layout_.units()[u];
    std::vector<T> mine(std::size_t(layout_.block_size(u)));
    View1<T> src;
    if (grads) src = st >= 2 ? sub(grad_shard_, layout_.shard_offset(u), layout_.block_size(u))
                             : sub(ps.grads(), layout_.block_begin(u), layout_.block_size(u));
    if (!grads && file_) read_file_params(u, mine.data());
    else {
      if (!grads) src = sub(param_shard_, layout_.shard_offset(u), layout_.block_size(u));
      auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), src);
      std::copy(h.data(), h.data() + h.size(), mine.begin());
    }
    std::copy(mine.begin(), mine.end(), full.begin() + unit.begin + layout_.block_offset(u));
    MPI_Request req;
    std::vector<int> counts, displs;
    for (int k = 0; k < dp_.size(); ++k) {
      counts.push_back(int(coll::block_count(unit.size(), dp_.size(), k)));
      displs.push_back(int(coll::block_offset(unit.size(), dp_.size(), k)));
    }
    const MPI_Datatype dt = sizeof(T) == 4 ? MPI_FLOAT : MPI_DOUBLE;
    PARTRAIN_MPI_CHECK(MPI_Iallgatherv(MPI_IN_PLACE, 0, dt, full.data() + unit.begin, counts.data(), displs.data(), dt,
                                       dp_.comm(), &req));
    coll::wait(req);
  }
  std::vector<io::NamedTensor> out;
  for (const auto& p : ps.infos())
    out.push_back({p.name, p.shape, std::vector<double>(full.begin() + p.offset, full.begin() + p.offset + p.size)});
  return out;
}

/// Whole tensors in fp32 of a 16-bit run: this rank's blocks of the master weights, or of its reduced gradients divided
/// by the loss scale, allgathered (stage 0: every rank holds everything).
template <class T>
std::vector<io::NamedTensor> ZeroTrainer<T>::gather_full_mixed(bool grads) {
  const int st = opts_.stage;
  auto& ps = model_.params();
  const double inv = grads && std::is_same_v<T, fp16> ? 1.0 / scaler_.scale() : 1.0;
  std::vector<float> full(std::size_t(ps.numel()));
  for (std::size_t u = 0; u < layout_.units().size(); ++u) {
    const auto& unit = layout_.units()[u];
    const std::int64_t off = layout_.shard_offset(u), n = layout_.block_size(u);
    float* mine = full.data() + unit.begin + layout_.block_offset(u);
    if (grads) {
      auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grad_block(u));
      for (std::int64_t i = 0; i < n; ++i) mine[i] = float(double(float(h(i))) * inv);
    } else if constexpr (is_half_v<T>) {
      read_master(off, n, mine);
    }
    if (st == 0) continue;
    MPI_Request req;
    std::vector<int> counts, displs;
    for (int k = 0; k < dp_.size(); ++k) {
      counts.push_back(int(coll::block_count(unit.size(), dp_.size(), k)));
      displs.push_back(int(coll::block_offset(unit.size(), dp_.size(), k)));
    }
    PARTRAIN_MPI_CHECK(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, full.data() + unit.begin, counts.data(),
                                       displs.data(), MPI_FLOAT, dp_.comm(), &req));
    coll::wait(req);
  }
  std::vector<io::NamedTensor> out;
  for (const auto& p : ps.infos())
    out.push_back({p.name, p.shape, std::vector<double>(full.begin() + p.offset, full.begin() + p.offset + p.size)});
  return out;
}

template <class T>
double ZeroTrainer<T>::measure_pure_comm(int reps) {
  // The step's gradient collectives alone (stage 0: the bucket allreduces; 1–3: one reduce-scatter per unit) and the
  // parameter allgathers (1–3), median of `reps` after a warm-up. Leaves the buffers changed.
  std::vector<double> times;
  auto& ps = model_.params();
  View1<T> scratch;  // stages 2, 3: the collectives of a unit at a time, in a scratch of the largest unit's size
  if (opts_.stage >= 2) scratch = View1<T>("comm/zero.replay", 2 * slot_elems_);
  for (int i = 0; i <= reps; ++i) {
    coll::barrier(dp_.comm());
    const double t0 = fenced_time_s();
    if (reducer_) {
      reducer_->begin_step();
      reducer_->finish();
    } else {
      std::vector<coll::Request> reqs;
      for (std::size_t u = 0; u < layout_.units().size(); ++u) {
        const auto& unit = layout_.units()[u];
        T* g = opts_.stage == 1 ? ps.grads().data() + unit.begin : scratch.data();
        T* p = opts_.stage < 3 ? ps.params().data() + unit.begin : scratch.data() + slot_elems_;
        reqs.push_back(dp_.reduce_scatter(g, g, unit.size(), coll::ReduceOp::Sum, opts_.algo));
        reqs.push_back(dp_.allgather(p + layout_.block_offset(u), p, unit.size(), opts_.algo));
        if (opts_.stage >= 2) coll::wait_all(reqs);  // the scratch is reused by the next unit
      }
      coll::wait_all(reqs);
    }
    if (i > 0) times.push_back(fenced_time_s() - t0);
  }
  std::sort(times.begin(), times.end());
  pure_s_ = times.empty() ? 0.0 : times[times.size() / 2];
  return pure_s_;
}

template <class T>
std::vector<std::pair<std::string, bool>> ZeroTrainer<T>::self_check() {
  bool drained = rs_inflight_.empty() && ag_inflight_.empty();
  for (const auto& g : gathered_) drained = drained && g->state == Gathered::None;
  for (const auto& b : buckets_) drained = drained && !b->buf.data() && b->reducing.empty();
  drained = drained && reduced_.empty();
  std::vector<std::pair<std::string, bool>> out = {{"no gathered layer or bucket left behind", drained}};
  if (opts_.stage < 3) {  // replicas of the parameters bit-identical
    auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model_.params().params());
    double checksum = 0;
    for (std::size_t i = 0; i < hp.size(); ++i) checksum += double(hp.data()[i]) * double(i % 13 + 1);
    const auto cs = coll::over_ranks(dp_.comm(), checksum);
    out.push_back({"replicas identical", cs[0] == cs[2]});
  }
  return out;
}

template <class T>
std::string ZeroTrainer<T>::step_note(const StepRecord& rec) const {
  double comm = 0, gather = 0;
  for (const auto& [k, v] : rec.phases) {
    if (k == "comm_exposed") comm = v;
    if (k == "gather_exposed") gather = v;
  }
  char buf[96];
  std::snprintf(buf, sizeof buf, "exposed comm %4.1f%%%s", 100.0 * comm / rec.time_s,
                opts_.stage == 3 ? (" | gathers " + std::to_string(int(100.0 * gather / rec.time_s + 0.5)) + "%").c_str() : "");
  const std::string scale = log_.step_note();
  return scale.empty() ? std::string(buf) : std::string(buf) + " | " + scale;
}

template <class T>
std::array<double, 3> ZeroTrainer<T>::paper_state_bytes() const {
  // fp32 Adam 4 + 4 + 8 bytes per parameter; mixed precision 2 + 2 + 12 (the master weights and fp32 moments)
  const double psi = double(model_.params().numel()), nd = double(dp_.size()), e = double(sizeof(T));
  const double se = double(sizeof(master_t<T>)), master = is_half_v<T> ? se : 0.0;
  const double opt = master + (spec_.optimizer.kind == "sgd" ? (spec_.optimizer.momentum > 0 ? se : 0.0) : 2 * se);
  switch (opts_.stage) {
    case 0: return {e * psi, e * psi, opt * psi};
    case 1: return {e * psi, e * psi, opt * psi / nd};
    case 2: return {e * psi, e * psi / nd, opt * psi / nd};
    default: return {e * psi / nd, e * psi / nd, opt * psi / nd};
  }
}

template <class T>
std::array<double, 3> ZeroTrainer<T>::predicted_state_bytes() const {
  // The paper's shares with this rank's exact shard, plus the buffers this implementation holds for them (gathered
  // layers and gradient buckets, pooled: at most what was in use at once per size) and, offloading to a file, the
  // staging buffer instead of the state.
  const double e = double(sizeof(T)), psi = double(model_.params().numel()), L = double(layout_.shard_size());
  const double params = (opts_.stage < 3 ? e * psi : (file_ ? 0.0 : e * L)) + double(pool_param_bytes_);
  const double grads = (opts_.stage < 2 ? e * psi : e * L) + double(pool_grad_bytes_);
  double opt = double(master_.size() + host_master_.size()) * double(sizeof(master_t<T>));
  if (opt_) opt += double(opt_->state_bytes());
  else if (host_opt_) opt += double(host_opt_->state_bytes());
  else if (file_) opt += double(file_->staging_bytes());
  return {params, grads, opt};
}

template <class T>
std::vector<std::string> ZeroTrainer<T>::summary_lines() const {
  const auto p = paper_state_bytes();
  return {"# ZeRO stage " + std::to_string(opts_.stage) + ", the paper's formula per rank: params " + format_bytes(p[0]) +
          ", grads " + format_bytes(p[1]) + ", optimizer " + format_bytes(p[2]) + " (the prediction adds gathered layers " +
          format_bytes(double(pool_param_bytes_)) + " and gradient buckets " + format_bytes(double(pool_grad_bytes_)) +
          (file_ ? ", and holds the state in " + file_->path() : std::string()) + ")"};
}

template <class T>
NamedFigures ZeroTrainer<T>::summary(const RunMedians& m) {
  const int n = dp_.size();
  const double e = double(sizeof(T)), psi = double(model_.params().numel());
  const auto paper = paper_state_bytes();
  const auto pure = coll::over_ranks(dp_.comm(), pure_s_);
  const double per_step = steps_ ? 1.0 / double(steps_) : 0.0;
  const double rs = double(counters_[coll::Op::ReduceScatter].bytes_sent) * per_step,
               ag = double(counters_[coll::Op::Allgather].bytes_sent) * per_step,
               ar = double(counters_[coll::Op::Allreduce].bytes_sent) * per_step;
  // Against partrain-dp in bus bytes, which every algorithm counts alike (bytes sent depend on it: the shm algorithm's
  // copies through the node's memory counted half of the ring's)
  const double bus = double(counters_[coll::Op::ReduceScatter].bus_bytes + counters_[coll::Op::Allgather].bus_bytes +
                            counters_[coll::Op::Allreduce].bus_bytes) * per_step;
  const double dp_bytes = 2.0 * double(n - 1) / double(n) * psi * e;  // partrain-dp's allreduce of Ψ, in bus bytes
  NamedFigures f = {{"zero_stage", double(opts_.stage)},
                    {"paper_params_bytes", paper[0]},
                    {"paper_grads_bytes", paper[1]},
                    {"paper_optimizer_bytes", paper[2]},
                    {"zero_shard_elements", double(layout_.shard_size())},
                    {"zero_units", double(layout_.units().size())},
                    {"zero_gathered_params_bytes", double(pool_param_bytes_)},
                    {"zero_bucket_grads_bytes", double(pool_grad_bytes_)},
                    {"comm_pure_s", pure[1]},
                    {"comm_exposed_s", m.phase("comm_exposed")},
                    {"gather_exposed_s", m.phase("gather_exposed")},
                    {"reduce_scatter_bytes_sent_per_step", rs},
                    {"allgather_bytes_sent_per_step", ag},
                    {"allreduce_bytes_sent_per_step", ar},
                    {"dp_allreduce_bytes_per_step", dp_bytes},
                    {"bus_bytes_per_step", bus},
                    {"comm_bytes_vs_dp", dp_bytes > 0 ? bus / dp_bytes : 0.0},
                    {"predicted_comm_bytes_vs_dp", n == 1 ? 0.0 : opts_.stage == 3 ? 1.5 : 1.0}};
  for (const auto& x : log_.summary(scaler_)) f.push_back(x);
  if (file_) {
    f.push_back({"offload_bytes_read_per_step", double(file_->bytes_read()) * per_step});
    f.push_back({"offload_bytes_written_per_step", double(file_->bytes_written()) * per_step});
    f.push_back({"offload_io_wait_s", m.phase("offload_io")});
    f.push_back({"offload_dir_write_Bps", dir_rate_.first});
    f.push_back({"offload_dir_read_Bps", dir_rate_.second});
    const double opt_s = m.phase("optimizer");
    f.push_back({"offload_rate_Bps", opt_s > 0 ? double(file_->bytes_read() + file_->bytes_written()) * per_step / opt_s : 0.0});
    f.push_back({"offload_staging_bytes", double(file_->staging_bytes())});
  }
  return f;
}

template <class T>
NamedStrings ZeroTrainer<T>::attributes() const {
  NamedStrings a = {{"variant", "stage " + std::to_string(opts_.stage) + (opts_.offload == "none" ? "" : " offload " + opts_.offload)},
                    {"zero_stage", std::to_string(opts_.stage)},
                    {"offload", opts_.offload},
                    {"offload_dir", opts_.offload_dir},
                    {"offload_direct", file_ && file_->direct() ? "true" : "false"},
                    {"prefetch", opts_.prefetch ? "true" : "false"},
                    {"algorithm", coll::name(opts_.algo)}};
  if (is_half_v<T>) a.push_back({"half_gemm", kernels::half_gemm_kernel(precision_name<T>())});
  return a;
}

/// Reading and writing slab `slab` of the offload file, for the checkpoint (fp32 and fp64 runs).
template <class T>
std::function<void(std::int64_t, std::int64_t, master_t<T>*)> ZeroTrainer<T>::file_reader(int slab) {
  return [this, slab](std::int64_t off, std::int64_t n, M* out) { file_->read(slab, off, n, out); };
}
template <class T>
std::function<void(std::int64_t, std::int64_t, const master_t<T>*)> ZeroTrainer<T>::file_writer(int slab) {
  return [this, slab](std::int64_t off, std::int64_t n, const M* in) { file_->write(slab, off, n, in); };
}

template <class T>
std::vector<io::TensorPart> ZeroTrainer<T>::state_parts(bool writer) {
  if (!state_) {
    // Each rank writes its blocks (at stage 0 every rank holds everything: the first writes); at stages 0–2 every
    // rank reads the whole parameters back, and its blocks of the optimizer state (at stage 3 of the parameters too).
    state_ = std::make_unique<StateIo<master_t<T>>>();
    const auto& ps = model_.params();
    const int st = opts_.stage;
    const bool writes = st > 0 || dp_.rank() == 0;
    using R = typename StateIo<master_t<T>>::Range;
    std::vector<R> full, shard;
    for (std::size_t u = 0; u < layout_.units().size(); ++u) {
      const std::int64_t b = layout_.block_begin(u), n = layout_.block_size(u);
      full.push_back({b, b + n, b});
      shard.push_back({b, b + n, layout_.shard_offset(u)});
    }
    const int pslab = state_slabs_;
    if constexpr (is_half_v<T>) {  // the master weights of this rank's blocks are the parameters
      (void)full;
      (void)pslab;
      if (master_.size()) state_->add_ranges("params", ps, master_, shard, writes);
      else if (host_master_.size()) state_->add_ranges("params", ps, host_master_, shard, writes);
      else state_->add_ranges_io("params", ps, shard, writes, file_reader(pslab), file_writer(pslab));
    } else if (st < 3) {
      state_->add("params", ps, ps.params(), false);
      state_->add_ranges("params", ps, ps.params(), full, writes, false);
    } else if (file_) {
      state_->add_ranges_io("params", ps, shard, true, file_reader(pslab), file_writer(pslab));
    } else {
      state_->add_ranges("params", ps, param_shard_, shard, true);
    }
    const char* groups[] = {"optim/m", "optim/v"};
    for (int g = 0; g < state_slabs_; ++g) {
      if (opt_) state_->add_ranges(groups[g], ps, g == 0 ? opt_->m() : opt_->v(), shard, writes);
      else if (host_opt_) state_->add_ranges(groups[g], ps, g == 0 ? host_opt_->m() : host_opt_->v(), shard, writes);
      else if (file_) state_->add_ranges_io(groups[g], ps, shard, writes, file_reader(g), file_writer(g));
    }
  }
  return state_->parts(writer);
}

template <class T>
void ZeroTrainer<T>::restore_state(const std::vector<io::TensorPart>& parts, std::int64_t steps) {
  state_parts(false);
  state_->restore(parts);
  refresh_params_from_master();  // a 16-bit run's weights from the master weights read (collective at stages 1, 2)
  if (opt_) opt_->set_steps(steps);
  if (host_opt_) host_opt_->set_steps(steps);
  file_steps_ = steps;
}

template <class T>
std::int64_t ZeroTrainer<T>::optimizer_steps() const {
  if (opt_) return opt_->steps_taken();
  if (host_opt_) return host_opt_->steps_taken();
  return file_steps_;
}

template class ZeroTrainer<float>;
template class ZeroTrainer<double>;
template class ZeroTrainer<bf16>;
template class ZeroTrainer<fp16>;

}  // namespace partrain::parallel::zero
