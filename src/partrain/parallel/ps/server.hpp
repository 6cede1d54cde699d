// A parameter server: the primary of one shard of the flat parameter buffer (and, with ps.backup, the replica of the
// previous server's shard), running an event loop until the coordinator ends the run.
//
//   push    a worker's header announces its gradient (or, in local mode, its parameter change) for the shard; the
//           server posts a receive per piece into the worker's buffer. Complete contributions are applied by the
//           mode's rule: bsp/half_sync sum clock c's contributions in worker order (own slices, then the slices of
//           a worker removed at c, which the others computed) and take one optimizer step; asp/ssp take one
//           optimizer step per push on arrival; local averages the round's changes weighted by samples.
//   pull    answered once the mode allows it — bsp: the shard has applied clock c; asp: the worker's own pushes
//           are applied (read-your-writes); ssp: that, and every active worker has pushed clock c − s − 1 —
//           from a snapshot of the shard, piece by piece in layer order.
//   replicas with ps.backup, every applied update is forwarded to the backup (server j+1), which applies the same
//           update with the same code (bit-identical state); a pull is answered only once the backup has
//           acknowledged every update the reply contains, so a promoted backup never lags what a worker has seen.
//   checkpoints every ps.checkpoint_every clocks the servers write their shards, optimizer state and clocks
//           collectively (io/checkpoint.hpp).
//   joins   (ps.spares) a clock's contributions are those of the workers that are members at it, spares from the
//           clock they joined; while the coordinator chooses a join's clock the server holds its updates. A joining
//           server (--inject join:rank=R:step=K:shard=J) owns shard J from clock K: the first owner applies clocks
//           before K, then sends it the shard — values, optimizer state, counts — and keeps nothing; the workers
//           send clock K's pulls and pushes, and later ones, to R, which queues them until the shard arrives, so no
//           push is lost or applied twice.
// Staleness of an update: the shard's update count when it is applied minus the count the worker's pull returned.
//
// Mixed precision (T = bf16, fp16): the workers compute, push and pull in 16 bits; the server keeps its shard in fp32
// (master weights and moments), sums the contributions of a clock in fp32, applies the fp32 update and refreshes a
// 16-bit copy of the shard that the pulls send — the fp32 state never leaves the servers but in checkpoints.
// fp16's loss scaling, shard by shard (GradScaler's rule for several optimizers): every shard keeps a loss scaler; a
// pull reply carries the shard's scale and a worker scales its loss by the smallest; a push carries the scale it was
// computed with, which the update divides by; a shard whose update holds inf/NaN skips it (its version still moves:
// the clocks go on) and backs its scale off; backups replay the same decisions.
#pragma once

#include <deque>
#include <map>
#include <memory>

#include "partrain/collectives/mpi_communicator.hpp"
#include "partrain/models/loss_scaler.hpp"
#include "partrain/models/optimizer.hpp"
#include "partrain/models/param_store.hpp"
#include "partrain/parallel/ps/context.hpp"

namespace partrain::parallel::ps {

struct ServerStats {
  std::map<std::int64_t, std::int64_t> staleness;  ///< staleness → applied updates (primary shards)
  std::int64_t updates = 0;                        ///< updates applied as primary
  std::int64_t samples = 0;                        ///< samples whose gradient those updates contain
  std::int64_t discarded = 0;                      ///< pushes dropped (removed worker, duplicate after promotion)
  std::int64_t max_gap = 0, bound_waits = 0;       ///< ssp: largest clock gap at a pull, pulls held by the bound
  std::int64_t checkpoints = 0;
  std::int64_t skipped = 0;                        ///< fp16: updates skipped for inf/NaN (primary shards)
  double loss_scale = 1;                           ///< fp16: the smallest primary shard's scale at the end
  double last_update_s = 0;
};

template <class T>
class Server {
 public:
  using HostView = Kokkos::View<T*, Kokkos::HostSpace>;  ///< what travels: pushes, pulls
  using Wide = master_t<T>;  ///< the server's arithmetic: fp32 for a 16-bit model
  using HostM = Kokkos::View<Wide*, Kokkos::HostSpace>;  ///< what the server keeps: parameters, moments, sums

  /// `store`: the model's declarations (shapes, initial values); `servers`: the servers' communicator (checkpoints).
  Server(Context& cx, const models::ParamStore<T>& store, std::uint64_t seed, coll::MpiCommunicator& servers);
  ~Server();

  /// Collective over the servers: state from a checkpoint (its meta already read).
  void load(const std::string& path);
  /// The event loop; returns once the coordinator ended the run and nothing is left to apply.
  void run();

  /// Elements of the shards this server is primary of (begin, values), for the gathered parameters; with --dump-state
  /// the parameters before the last update (grads: the gradient that update applied).
  std::vector<std::pair<std::int64_t, std::vector<double>>> primary_values(bool grads) const;
  const ServerStats& stats() const { return stats_; }
  std::int64_t version() const;
  /// (shard, update count) of every shard this server is primary of (none once it went silent).
  std::vector<std::pair<int, std::int64_t>> primary_versions() const;
  bool stalled() const { return stalled_; }

 private:
  struct Contribution;
  struct Shard;
  void on_header(int from, const Header& h);
  void on_push(int from, const Header& h);
  void progress(Shard& s);
  void apply_sync(Shard& s);
  void apply_async(Shard& s);
  /// One update of the shard from `grad` times `grad_scale` (1/the loss scale the contributions were computed with);
  /// `skip`: fp16 found inf/NaN — no optimizer step, the scaler backs off, the version moves on.
  void update(Shard& s, const HostM& grad, int worker_index, std::int64_t samples, std::int64_t clock,
              Wide grad_scale = 1, bool skip = false);
  /// fp16: whether the update's gradient holds inf/NaN (never for other types).
  static bool nonfinite(const HostM& grad);
  /// The pulls' 16-bit copy of the shard from its fp32 values (a 16-bit T; nothing otherwise: the shard is sent).
  void refresh_half(Shard& s);
  void answer_pulls(Shard& s);
  void replicate_in(Shard& s);
  /// Shard migration (a server join): the first owner sends it once it applied every clock before the join's; the
  /// joining server receives it.
  void migrate_out(Shard& s);
  void migrate_in(Shard& s, int from, const Header& h);
  bool migrated_in(Shard& s);
  void checkpoint(std::int64_t version);
  Shard* shard(int j);
  std::int64_t clock_of(const Shard& s) const;

  Context& cx_;
  const models::ParamStore<T>& store_;
  coll::MpiCommunicator& servers_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::pair<HostView, std::vector<int>>> orphans_;  ///< pushes for a shard this server does not hold
  ServerStats stats_;
  bool stalled_ = false, checkpoints_off_ = false, hold_ = false;
  bool hold_join_ = false;  ///< updates held while the coordinator chooses a spare's join clock
  std::int64_t last_fault_clock_ = -1;
  std::int64_t ckpt_at_ = -1;  ///< the update count of the next checkpoint (updates stop there until it is written)
};

extern template class Server<float>;
extern template class Server<double>;
extern template class Server<bf16>;
extern template class Server<fp16>;

}  // namespace partrain::parallel::ps
