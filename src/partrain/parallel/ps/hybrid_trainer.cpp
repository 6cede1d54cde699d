#include "partrain/parallel/ps/hybrid_trainer.hpp"

#include <algorithm>
#include <cstdio>

#include "partrain/core/error.hpp"
#include "partrain/core/memory.hpp"
#include "partrain/core/timer.hpp"
#include "partrain/kernels/optimizer.hpp"

namespace partrain::parallel::ps {
namespace {
std::string fmt(const char* f, double x) {
  char b[64];
  std::snprintf(b, sizeof b, f, x);
  return b;
}
}  // namespace

HybridBytes hybrid_bytes(double rows, double dim, double dense, double tables, int servers, int workers, double elem) {
  HybridBytes b;
  const double ring = workers > 1 ? 2.0 * (workers - 1) / workers : 0.0;
  b.sparse = rows * (8.0 + 2.0 * dim * elem) + 2.0 * 8.0 * (servers + workers - 1);  // a count to and from each rank
  b.dense = 2.0 * ring * dense * elem;
  b.dense_ps = 2.0 * (tables + dense) * elem;
  b.dp = 2.0 * ring * (tables + dense) * elem;
  return b;
}

template <class T>
HybridTrainer<T>::HybridTrainer(const models::ModelSpec& spec, const models::Dataset<T>& data,
                                const models::TrainSpec& train, coll::MpiCommunicator& world, int servers,
                                const DpOptions& dp)
    : spec_(spec), data_(data), train_(train), world_(world), servers_(servers) {
  PARTRAIN_REQUIRE(spec.kind == "sparse_mlp" && servers >= 1 && world.size() > servers,
                   "the hybrid parameter server needs the sparse MLP, a server and a worker");
  const auto& c = spec.sparse;
  const int n = world.size(), S = servers;
  send_n_.assign(std::size_t(n), 0);
  recv_n_.assign(std::size_t(n), 0);
  workers_comm_ = world.split(server() ? 0 : 1, world.rank());
  if (server()) {
    // Key k = f·rows + r lives in slot k / S of server k mod S, initialised as partrain-ref initialises row r.
    const std::int64_t keys = c.tables * c.rows, j = world.rank();
    const std::int64_t slots = keys > j ? (keys - j + S - 1) / S : 0;
    rows_.assign(std::size_t(slots * c.dim), T(0));
    if (train.optimizer.kind == "adagrad") acc_.assign(rows_.size(), T(0));
    models::ParamStore<T> decl("sparse_mlp");
    models::EmbeddingBagLayer<T>(c).declare(decl);
    for (std::int64_t s = 0; s < slots; ++s) {
      const std::int64_t k = s * S + j, f = k / c.rows, r = k % c.rows;
      const std::int64_t at = decl.infos()[std::size_t(f)].offset + r * c.dim;
      decl.init_values(spec.seed, at, at + c.dim, rows_.data() + s * c.dim);
    }
    memory_track_external("params/ps.sparse_rows", rows_.data(), std::int64_t(rows_.size() * sizeof(T)));
    if (!acc_.empty()) memory_track_external("optim/ps.adagrad_rows", acc_.data(), std::int64_t(acc_.size() * sizeof(T)));
    return;
  }
  // A worker: the dense layers whole, the tables cut to the rows its share of a batch can touch.
  share_ = share_of(train.global_batch, n - S, world.rank() - S);
  // Every worker's tables are the largest share's (B/W rounded up): the dense parameters then sit at the same offset
  // on every worker, as the reducer's shared-memory buckets need.
  cap_ = std::max<std::int64_t>(1, share_of(train.global_batch, n - S, 0).count * c.bag);
  auto local = spec;
  local.sparse.rows = cap_;
  model_ = models::make_layers<T>(local);
  model_->build(spec.seed);
  dense_begin_ = model_->declared_range(0).second;
  opt_ = std::make_unique<models::Optimizer<T>>(train.optimizer, model_->params().numel() - dense_begin_);
  auto dpo = dp;
  dpo.local_layers = 1;  // the tables' gradients go to the servers
  reducer_ = std::make_unique<GradientReducer<T>>(*model_, *workers_comm_, dpo);
  batch_ = data.allocate(share_.count);
  global_ids_ = IndexView1("act/batch.global_ids", batch_.tokens.extent(0));
  ws_ = model_->make_workspace(share_.count);
  slot_of_key_.resize(std::size_t(S));
}

template <class T>
HybridTrainer<T>::~HybridTrainer() {
  if (!rows_.empty()) memory_untrack_external(rows_.data());
  if (!acc_.empty()) memory_untrack_external(acc_.data());
}

template <class T>
void HybridTrainer<T>::pull() {
  const auto& c = spec_.sparse;
  const int n = world_.size(), S = servers_;
  std::fill(send_n_.begin(), send_n_.end(), 0);
  keys_out_.clear();
  if (!server()) {
    // The distinct rows of every table, ascending; the batch's ids remapped to their compact rows.
    Kokkos::deep_copy(global_ids_, batch_.tokens);
    auto ids = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), global_ids_);
    auto local = Kokkos::create_mirror_view(batch_.tokens);
    std::vector<std::vector<double>> by_server(static_cast<std::size_t>(S));
    for (auto& v : slot_of_key_) v.clear();
    std::vector<std::int64_t> seen;
    for (std::int64_t f = 0; f < c.tables; ++f) {
      seen.clear();
      for (std::int64_t s = 0; s < share_.count; ++s)
        for (std::int64_t b = 0; b < c.bag; ++b) seen.push_back(ids((s * c.tables + f) * c.bag + b));
      std::sort(seen.begin(), seen.end());
      seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
      for (std::int64_t s = 0; s < share_.count; ++s)
        for (std::int64_t b = 0; b < c.bag; ++b) {
          const std::int64_t i = (s * c.tables + f) * c.bag + b;
          local(i) = int(std::lower_bound(seen.begin(), seen.end(), std::int64_t(ids(i))) - seen.begin());
        }
      for (std::size_t u = 0; u < seen.size(); ++u) {
        const std::int64_t k = f * c.rows + seen[u];
        by_server[std::size_t(k % S)].push_back(double(k));
        slot_of_key_[std::size_t(k % S)].push_back(f * cap_ + std::int64_t(u));
      }
    }
    Kokkos::deep_copy(batch_.tokens, local);
    for (int j = 0; j < S; ++j) {
      send_n_[std::size_t(j)] = std::int64_t(by_server[std::size_t(j)].size());
      keys_out_.insert(keys_out_.end(), by_server[std::size_t(j)].begin(), by_server[std::size_t(j)].end());
    }
    rows_pulled_ += double(keys_out_.size());
  }
  // Counts, then keys: workers → servers.
  std::vector<double> out_c(send_n_.begin(), send_n_.end()), in_c(send_n_.size());
  world_.alltoall(out_c.data(), in_c.data(), 1).wait();
  for (std::size_t r = 0; r < in_c.size(); ++r) recv_n_[r] = std::int64_t(in_c[r]);
  std::int64_t in = 0;
  for (auto x : recv_n_) in += x;
  keys_in_.resize(std::size_t(in));
  world_.alltoallv(keys_out_.data(), send_n_.data(), keys_in_.data(), recv_n_.data()).wait();
  // Rows: servers → workers, the keys' rows in the order asked.
  std::vector<std::int64_t> out_n(static_cast<std::size_t>(n)), back_n(static_cast<std::size_t>(n));
  for (int r = 0; r < n; ++r) {
    out_n[std::size_t(r)] = recv_n_[std::size_t(r)] * c.dim;
    back_n[std::size_t(r)] = send_n_[std::size_t(r)] * c.dim;
  }
  rows_out_.resize(std::size_t(in * c.dim));
  for (std::int64_t q = 0; q < in; ++q) {
    const std::int64_t slot = std::int64_t(keys_in_[std::size_t(q)]) / S;
    std::copy_n(rows_.data() + slot * c.dim, c.dim, rows_out_.data() + q * c.dim);
  }
  rows_in_.resize(keys_out_.size() * std::size_t(c.dim));
  world_.alltoallv(rows_out_.data(), out_n.data(), rows_in_.data(), back_n.data()).wait();
  if (server()) return;
  auto tables = Kokkos::subview(model_->params().params(), Kokkos::make_pair(std::int64_t(0), dense_begin_));
  auto ht = Kokkos::create_mirror_view(tables);
  std::int64_t q = 0;
  for (int j = 0; j < S; ++j)
    for (auto slot : slot_of_key_[std::size_t(j)]) std::copy_n(rows_in_.data() + (q++) * c.dim, c.dim, ht.data() + slot * c.dim);
  Kokkos::deep_copy(tables, ht);
}

template <class T>
void HybridTrainer<T>::server_update() {
  // The touched slots, ascending, and their gradients summed over the workers in worker order (rank order of the
  // packed buffer); then one optimizer step on the gathered rows, scattered back.
  const auto& c = spec_.sparse;
  const int S = servers_;
  touched_.clear();
  for (double k : keys_in_) touched_.push_back(std::int64_t(k) / S);
  std::sort(touched_.begin(), touched_.end());
  touched_.erase(std::unique(touched_.begin(), touched_.end()), touched_.end());
  const std::int64_t U = std::int64_t(touched_.size()), D = c.dim;
  grad_sum_.assign(std::size_t(U * D), T(0));
  for (std::size_t q = 0; q < keys_in_.size(); ++q) {
    const std::int64_t u =
        std::lower_bound(touched_.begin(), touched_.end(), std::int64_t(keys_in_[q]) / S) - touched_.begin();
    for (std::int64_t d = 0; d < D; ++d) grad_sum_[std::size_t(u * D + d)] += grads_in_[q * std::size_t(D) + std::size_t(d)];
  }
}

template <class T>
StepRecord HybridTrainer<T>::step(std::int64_t s, const BeforeUpdate& before_update) {
  const auto& c = spec_.sparse;
  const int n = world_.size(), S = servers_;
  if (!server()) data_.fill(std::uint64_t(s), share_.first, batch_);  // data generation is not timed
  coll::barrier(world_.comm());
  const auto before = world_.counters(), before_dense = workers_comm_->counters();
  const double t0 = fenced_time_s();
  pull();
  const double t_pull = fenced_time_s();
  double t_fwd = t_pull, t_bwd = t_pull, in_hooks = 0, local_loss = 0;
  const double rows = double(train_.global_batch);
  if (!server()) {
    reducer_->begin_step();
    model_->params().zero_grad();
    typename models::Model<T>::Hooks hooks;
    hooks.forward_done = [&] { t_fwd = fenced_time_s(); };
    hooks.backward_done = [&](std::size_t layer) { reducer_->backward_done(layer); };
    local_loss = model_->forward_backward(batch_, ws_, 1.0 / rows, hooks);
    t_bwd = fenced_time_s();
    in_hooks = reducer_->exposed_s();
  }
  // Push: the touched rows' gradients, in the order of the keys pulled; the dense allreduce completes meanwhile.
  std::vector<std::int64_t> out_n(static_cast<std::size_t>(n)), in_n(static_cast<std::size_t>(n));
  for (int r = 0; r < n; ++r) {
    out_n[std::size_t(r)] = send_n_[std::size_t(r)] * c.dim;
    in_n[std::size_t(r)] = recv_n_[std::size_t(r)] * c.dim;
  }
  grads_out_.resize(keys_out_.size() * std::size_t(c.dim));
  if (!server()) {
    auto tables = Kokkos::subview(model_->params().grads(), Kokkos::make_pair(std::int64_t(0), dense_begin_));
    auto hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), tables);
    std::int64_t q = 0;
    for (int j = 0; j < S; ++j)
      for (auto slot : slot_of_key_[std::size_t(j)]) std::copy_n(hg.data() + slot * c.dim, c.dim, grads_out_.data() + (q++) * c.dim);
  }
  grads_in_.resize(keys_in_.size() * std::size_t(c.dim));
  auto push = world_.alltoallv(grads_out_.data(), out_n.data(), grads_in_.data(), in_n.data());
  const double t_push0 = fenced_time_s();
  if (!server()) reducer_->finish();
  const double t_dense = fenced_time_s();
  push.wait();
  const double t_push = fenced_time_s();
  if (server()) server_update();
  double global_loss = 0;
  coll::allreduce(&local_loss, &global_loss, 1, MPI_DOUBLE, MPI_SUM, world_.comm());
  StepRecord rec;
  rec.loss = global_loss / rows;
  if (before_update) before_update(rec.loss);
  const double t_opt0 = fenced_time_s();
  if (server()) {
    const std::int64_t U = std::int64_t(touched_.size()), D = c.dim;
    Kokkos::View<T*, Kokkos::HostSpace> p("optim/ps.update_rows", std::size_t(U * D)), g(grad_sum_.data(), std::size_t(U * D));
    Kokkos::View<T*, Kokkos::HostSpace> a("optim/ps.update_acc", acc_.empty() ? 0 : std::size_t(U * D));
    for (std::int64_t u = 0; u < U; ++u) {
      std::copy_n(rows_.data() + touched_[std::size_t(u)] * D, D, p.data() + u * D);
      if (a.size()) std::copy_n(acc_.data() + touched_[std::size_t(u)] * D, D, a.data() + u * D);
    }
    const auto& o = train_.optimizer;
    if (o.kind == "adagrad") kernels::adagrad_step(p, g, a, kernels::AdagradParams{o.lr, o.eps, o.weight_decay});
    else kernels::sgd_step(p, g, a, kernels::SgdParams{o.lr, o.momentum, o.weight_decay});
    for (std::int64_t u = 0; u < U; ++u) {
      std::copy_n(p.data() + u * D, D, rows_.data() + touched_[std::size_t(u)] * D);
      if (a.size()) std::copy_n(a.data() + u * D, D, acc_.data() + touched_[std::size_t(u)] * D);
    }
  } else {
    const std::int64_t N = model_->params().numel();
    opt_->step(Kokkos::subview(model_->params().params(), Kokkos::make_pair(dense_begin_, N)),
               Kokkos::subview(model_->params().grads(), Kokkos::make_pair(dense_begin_, N)));
  }
  const double t_end = fenced_time_s();
  rec.time_s = (t_push - t0) + (t_end - t_opt0);
  rec.phase("pull", t_pull - t0);
  rec.phase("forward", t_fwd - t_pull);
  rec.phase("backward", (t_bwd - t_fwd) - in_hooks);
  rec.phase("push", t_push - t_dense);
  rec.phase("comm_exposed", in_hooks + (t_dense - t_push0));
  rec.phase("optimizer", t_end - t_opt0);
  rec.phase("busy", server() ? (t_end - t_opt0) : (t_bwd - t_pull) - in_hooks + (t_end - t_opt0));
  // What this step moved: the sparse exchange on the world, the dense allreduce among the workers.
  const auto after = world_.counters(), after_dense = workers_comm_->counters();
  auto moved = [](const coll::OpCounters& o) { return o.bytes_sent + o.bytes_received; };
  sparse_bytes_ += moved(after[coll::Op::Alltoall]) - moved(before[coll::Op::Alltoall]);
  dense_bytes_ += moved(after_dense[coll::Op::Allreduce]) - moved(before_dense[coll::Op::Allreduce]);
  counters_ = world_.counters();
  counters_ += workers_comm_->counters();
  steps_ += 1;
  return rec;
}

template <class T>
std::string HybridTrainer<T>::describe() const {
  return "hybrid parameter server: " + std::to_string(servers_) + " servers hold the " +
         std::to_string(spec_.sparse.tables) + " tables as sparse rows (key mod S), " + std::to_string(workers()) +
         " workers allreduce the dense layers; " + train_.optimizer.kind + " with lazy rows";
}

template <class T>
std::vector<io::NamedTensor> HybridTrainer<T>::gather_full(bool grads) {
  // The tables from every server's slots (gradients: the summed rows of the step, zero elsewhere), the dense
  // parameters from the first worker; assembled on world rank 0 (a server) under the reference's names.
  const auto& c = spec_.sparse;
  const int S = servers_, me = world_.rank();
  const std::int64_t D = c.dim;
  std::vector<double> mine;
  if (server()) {
    mine.resize(rows_.size());
    if (!grads) std::copy(rows_.begin(), rows_.end(), mine.begin());
    else
      for (std::size_t u = 0; u < touched_.size(); ++u)
        for (std::int64_t d = 0; d < D; ++d) mine[std::size_t(touched_[u] * D + d)] = double(grad_sum_[u * std::size_t(D) + std::size_t(d)]);
  } else if (me == S) {
    const std::int64_t N = model_->params().numel();
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grads ? model_->params().grads() : model_->params().params());
    for (std::int64_t i = dense_begin_; i < N; ++i) mine.push_back(double(h.data()[i]));
  }
  std::vector<io::NamedTensor> out;
  auto full = models::make_layers<double>(spec_);
  full->build(0, false, false);
  const std::int64_t E = table_elems();
  if (me == 0) {
    std::vector<double> flat(std::size_t(full->params().numel()), 0.0);
    for (int r = 0; r <= S; ++r) {
      std::vector<double> got;
      if (r == 0) {
        got = mine;
      } else {
        double len = 0;
        world_.recv(&len, 1, coll::DataType::Double, r, 91).wait();
        got.resize(std::size_t(len));
        world_.recv(got.data(), std::int64_t(len), coll::DataType::Double, r, 92).wait();
      }
      if (r < S)
        for (std::size_t s = 0; s * std::size_t(D) < got.size(); ++s) {
          const std::int64_t k = std::int64_t(s) * S + r;  // key = f·rows + row, and the tables sit in that order
          std::copy_n(got.data() + s * std::size_t(D), D, flat.data() + k * D);
        }
      else
        std::copy(got.begin(), got.end(), flat.begin() + E);
    }
    for (const auto& p : full->params().infos())
      out.push_back({p.name, p.shape, std::vector<double>(flat.begin() + p.offset, flat.begin() + p.offset + p.size)});
  } else if (me <= S) {
    const double len = double(mine.size());
    world_.send(&len, 1, coll::DataType::Double, 0, 91).wait();
    world_.send(mine.data(), std::int64_t(mine.size()), coll::DataType::Double, 0, 92).wait();
  }
  return out;
}

template <class T>
std::vector<std::pair<std::string, bool>> HybridTrainer<T>::self_check() {
  // The workers' dense replicas bit-identical (a position-weighted checksum, equal on every worker).
  double checksum = 0;
  if (!server()) {
    auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model_->params().params());
    for (std::int64_t i = dense_begin_; i < model_->params().numel(); ++i) checksum += double(hp.data()[i]) * double(i % 13 + 1);
  }
  const auto cs = coll::over_ranks(workers_comm_->comm(), checksum);
  int same = server() || cs[0] == cs[2] ? 1 : 0, all = 0;
  coll::allreduce(&same, &all, 1, MPI_INT, MPI_MIN, world_.comm());
  return {{"dense replicas identical", all == 1}};
}

template <class T>
std::string HybridTrainer<T>::step_note(const StepRecord& rec) const {
  for (const auto& [k, v] : rec.phases)
    if (k == "pull") return "pull " + fmt("%.1f", v * 1e3) + " ms";
  return "";
}

template <class T>
NamedFigures HybridTrainer<T>::summary(const RunMedians&) {
  // Per worker and step, averaged over the workers: the rows pulled, the bytes the sparse exchange and the dense
  // allreduce moved (sent + received), and what a dense parameter server and pure data parallelism would send for the same model.
  double v[3] = {server() ? 0.0 : rows_pulled_, server() ? 0.0 : double(sparse_bytes_), server() ? 0.0 : double(dense_bytes_)};
  double t[3] = {0, 0, 0};
  coll::allreduce(v, t, 3, MPI_DOUBLE, MPI_SUM, world_.comm());
  const double W = workers(), st = std::max(1.0, steps_);
  const double rows = t[0] / W / st;
  const auto& c = spec_.sparse;
  auto full = models::make_layers<double>(spec_);
  full->build(0, false, false);
  const double E = double(table_elems()), dn = double(full->params().numel()) - E;
  const auto b = hybrid_bytes(rows, double(c.dim), dn, E, servers_, workers(), double(sizeof(T)));
  auto mib = [](double x) { return fmt("%.3f", x / 1048576.0) + " MiB"; };
  lines_ = {"# hybrid: per worker and step " + fmt("%.0f", rows) + " rows pulled; moved " + mib((t[1] + t[2]) / W / st) +
                " (sparse " + mib(t[1] / W / st) + ", dense allreduce " + mib(t[2] / W / st) + "; model " +
                mib(b.hybrid()) + "); a dense PS would move " + mib(b.dense_ps) + ", DP " + mib(b.dp)};
  return {{"hybrid_rows_pulled_per_step", rows},
          {"hybrid_sparse_bytes_per_step", t[1] / W / st},
          {"hybrid_dense_bytes_per_step", t[2] / W / st},
          {"hybrid_bytes_per_step", (t[1] + t[2]) / W / st},
          {"predicted_hybrid_bytes_per_step", b.hybrid()},
          {"dense_ps_bytes_per_step", b.dense_ps},
          {"dp_bytes_per_step", b.dp}};
}

template <class T>
NamedStrings HybridTrainer<T>::attributes() const {
  return {{"ps_mode", "bsp"}, {"ps_hybrid", "true"}, {"ps_servers", std::to_string(servers_)}, {"ps_scheduler", "false"},
          {"ps_workers", std::to_string(workers())}, {"sparse_optimizer", train_.optimizer.kind + " (lazy rows)"}};
}

template <class T>
std::vector<std::string> HybridTrainer<T>::summary_lines() const {
  return lines_;
}

template class HybridTrainer<float>;
template class HybridTrainer<double>;

}  // namespace partrain::parallel::ps
