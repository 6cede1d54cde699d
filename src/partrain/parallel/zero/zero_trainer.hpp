// ZeRO (Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion Parameter Models", SC'20) over a
// data-parallel group of Nd ranks, Ψ parameters, on the plain reference models. Shards are blocks of units of the
// flat buffers (shards.hpp); every rank trains its slice of the global batch as in partrain-dp.
//   stage 0  partrain-dp: gradients allreduced in buckets, the whole optimizer on every rank      4Ψ + 4Ψ + 8Ψ
//   stage 1  the optimizer state sharded: bucketed reduce-scatter of the gradients (in place, into the full
//            buffer), each rank updates its blocks, the parameters are allgathered               4Ψ + 4Ψ + 8Ψ/Nd
//   stage 2  the gradients too: a bucket's gradients live in a bucket buffer only while its layers' backward
//            runs and its reduce-scatter is in flight; the reduced block is added to this rank's shard
//                                                                                                4Ψ + 4Ψ/Nd + 8Ψ/Nd
//   stage 3  the parameters too: each layer's units are allgathered just before its forward and again before
//            its backward (the next layer's gather prefetched while this one computes) and freed after; each
//            layer's gradients reduce-scattered as soon as its backward is done                16Ψ/Nd
// plus, for stages 2 and 3, the bucket and gathered-layer buffers in flight (reported beside the paper's figures).
// Communication per step: stages 1 and 2 move what partrain-dp's allreduce moves (reduce-scatter + allgather);
// stage 3 adds the backward's second allgather: 1.5× (and the tied wte's second gather and reduce-scatter).
//
// Offload (zero.offload): `host` keeps the optimizer state and runs its update in host memory (Kokkos::HostSpace,
// ZeRO-Offload); `file` keeps it — and at stage 3 the parameter shard — in a file streamed in chunks (offload_file.hpp,
// ZeRO-Infinity's NVMe tier).
//
// Mixed precision (a 16-bit T, train.precision bf16/fp16): parameters, gradients, buckets, gathered layers and every
// collective in 16 bits, and the fp32 master weights sharded with the optimizer state (in host memory with the host
// offload, as ZeRO-Offload keeps them): the paper's 2Ψ + 2Ψ + 12Ψ (Adam) with its stages' divisions by Nd. Each rank
// updates its blocks' master weights from its reduced 16-bit gradient blocks and writes the rounded values into
// its 16-bit parameters, which are then allgathered (stages 1, 2) or kept as the shard (stage 3). fp16's loss scaler
// skips a step on every rank when any rank's blocks hold inf/NaN. With the file offload a 16-bit run's master weights
// live in the file with the moments; at stage 3 its 16-bit parameter blocks are read from them, rounded.
#pragma once

#include <memory>
#include <map>
#include <set>

#include "partrain/collectives/mpi_communicator.hpp"
#include "partrain/models/trainer.hpp"
#include "partrain/parallel/dp/gradient_reducer.hpp"
#include "partrain/parallel/precision.hpp"
#include "partrain/parallel/state.hpp"
#include "partrain/parallel/trainer.hpp"
#include "partrain/parallel/zero/offload_file.hpp"
#include "partrain/parallel/zero/shards.hpp"

namespace partrain::parallel::zero {

struct ZeroOptions {
  int stage = 0;
  std::string offload = "none";  ///< none | host | file
  std::string offload_dir;
  double offload_buffer_mib = 4.0;  ///< staging buffer of the file offload
  double bucket_mib = 1.0;          ///< stages 0–2: gradient buckets
  bool prefetch = true;             ///< stage 3: gather the next layer while this one computes
  bool overlap = true;              ///< launch reduce-scatters (allreduces) during the backward
  coll::Algo algo = coll::Algo::Auto;
};

template <class T>
class ZeroTrainer : public Trainer<T> {
 public:
  using BeforeUpdate = typename Trainer<T>::BeforeUpdate;

  /// `model`: layers created, not built (the trainer allocates what its stage keeps). Collective over `dp`.
  ZeroTrainer(models::Model<T>& model, std::uint64_t seed, const models::Dataset<T>& data,
              const models::TrainSpec& spec, coll::MpiCommunicator& dp, const ZeroOptions& opts);
  ~ZeroTrainer() override;

  StepRecord step(std::int64_t step, const BeforeUpdate& before_update = {}) override;
  std::string describe() const override;
  std::vector<io::NamedTensor> gather_full(bool grads) override;
  double measure_pure_comm(int reps) override;
  std::vector<std::pair<std::string, bool>> self_check() override;
  coll::Counters counters() const override { return counters_; }
  std::vector<std::string> exposed_comm_phases() const override { return {"comm_exposed"}; }
  std::string step_note(const StepRecord& rec) const override;
  NamedFigures summary(const RunMedians& m) override;
  NamedStrings attributes() const override;
  std::array<double, 3> predicted_state_bytes() const override;
  std::vector<std::string> summary_lines() const override;
  bool checkpoints() const override { return true; }
  std::vector<io::TensorPart> state_parts(bool writer) override;
  void restore_state(const std::vector<io::TensorPart>& parts, std::int64_t steps) override;
  std::int64_t optimizer_steps() const override;
  NamedFigures checkpoint_numbers() const override { return scaler_numbers_of<T>(scaler_); }
  void restore_numbers(const std::map<std::string, double>& numbers) override;
  std::vector<io::ExtraDataset> datasets() override { return log_.datasets(); }

  const ShardLayout& layout() const { return layout_; }
  /// The ZeRO paper's bytes per rank of parameters, gradients and optimizer state for this stage (fp32, Adam).
  std::array<double, 3> paper_state_bytes() const;

 private:
  struct Gathered;  // a unit's gathered parameters (stage 3)
  struct Bucket;    // a unit's gradient buffer (stages 2, 3)
  // stage 3
  void gather(std::size_t unit);
  void wait_gathered(std::size_t unit);
  void release_params(std::size_t unit);
  void bind_layer(std::size_t layer, bool with_grads);
  // stages 1–3
  void launch_reduce_scatter(std::size_t unit);
  void progress();
  void finish_reduce_scatters(std::size_t launched_from);  ///< those launched by layers >= launched_from
  void finish_all_reduce_scatters();
  void free_reduced(std::size_t launched_from);  ///< the reduced buffers of layers >= launched_from
  void ensure_grad_buffer(std::size_t unit);
  void optimizer_step();
  void allgather_params();  ///< stages 1, 2
  std::vector<std::size_t> units_of_layer(std::size_t layer) const;
  View1<T> pool_get(std::int64_t n, const char* label);
  void pool_put(const View1<T>& v);

  models::Model<T>& model_;
  const models::Dataset<T>& data_;
  models::TrainSpec spec_;
  coll::MpiCommunicator& dp_;
  ZeroOptions opts_;
  std::uint64_t seed_;
  std::int64_t local_ = 0, first_ = 0;
  models::Batch<T> batch_;
  typename models::Model<T>::Workspace ws_;
  ShardLayout layout_;
  std::vector<std::vector<std::size_t>> producers_;  ///< per unit: the layers that write its gradient, descending
  std::vector<std::vector<std::size_t>> layer_units_;
  std::vector<std::string> tied_;
  // state
  std::unique_ptr<GradientReducer<T>> reducer_;  ///< stage 0
  std::unique_ptr<models::Optimizer<master_t<T>>> opt_;
  std::unique_ptr<models::Optimizer<master_t<T>, Kokkos::HostSpace>> host_opt_;
  // mixed precision: this rank's blocks of the fp32 master weights (in host memory with the host offload), the loss
  // scaler, the per-step log
  View1<master_t<T>> master_;
  Kokkos::View<master_t<T>*, Kokkos::LayoutRight, Kokkos::HostSpace> host_master_;
  models::LossScaler scaler_;
  PrecisionLog<T> log_;
  bool optimizer_step_mixed();  ///< false: skipped (fp16 inf/NaN)
  View1<T> param_block(std::size_t unit) const;
  View1<T> grad_block(std::size_t unit) const;
  std::vector<io::NamedTensor> gather_full_mixed(bool grads);
  using M = master_t<T>;
  /// The file offload's pass over the state: fn(u, off, len, slabs, at) for each unit block's part [off, off + len)
  /// of every chunk, whose slabs hold it from element `at`; the step count and the I/O wait are counted.
  template <class F>
  void stream_file(const F& fn);
  std::function<void(std::int64_t, std::int64_t, M*)> file_reader(int slab);
  std::function<void(std::int64_t, std::int64_t, const M*)> file_writer(int slab);
  /// This rank's block of unit u from the file's parameter slab, into `out` (a 16-bit run rounds its master weights).
  void read_file_params(std::size_t u, T* out);
  /// Elements [off, off + n) of this rank's master weights (in memory, host memory or the file), into `out`.
  void read_master(std::int64_t off, std::int64_t n, M* out);
  void refresh_params_from_master();
  /// The file's state slabs (optimizer state: m, v) and then its parameter slab: stage 3's parameter shard in fp32,
  /// the master weights in a 16-bit run (every stage; its 16-bit parameters at stage 3 are those rounded).
  std::unique_ptr<OffloadFile<M>> file_;
  std::int64_t file_steps_ = 0;
  View1<T> param_shard_, grad_shard_;  ///< stage 3 parameters (unless in the file); stages 2, 3 gradients
  View1<T> block_staging_;             ///< stage 3 with the file offload: a unit's parameter block read from it
  std::vector<std::unique_ptr<Gathered>> gathered_;
  std::vector<std::unique_ptr<Bucket>> buckets_;
  struct InflightRs {
    coll::Request req;
    std::size_t unit, layer;  ///< the unit, and the layer whose backward launched it
  };
  std::vector<InflightRs> rs_inflight_;
  std::size_t rs_layer_ = 0;
  std::vector<std::pair<std::size_t, View1<T>>> reduced_;  ///< reduced buckets not freed yet, by launching layer
  std::vector<coll::Request> ag_inflight_;
  std::int64_t slot_elems_ = 0;  ///< the largest unit
  std::int64_t live_param_bytes_ = 0, live_grad_bytes_ = 0;
  std::int64_t pool_param_bytes_ = 0, pool_grad_bytes_ = 0;  ///< peak bytes of gathered layers and buckets at once
  int state_slabs_ = 0;  ///< the file's slabs of optimizer state (the parameter slab follows: stage 3 or 16-bit)
  // measurement
  double exposed_s_ = 0, gather_wait_s_ = 0, pure_s_ = 0, offload_io_s_ = 0;
  std::pair<double, double> dir_rate_{0, 0};
  std::int64_t steps_ = 0;
  coll::Counters counters_;
  std::unique_ptr<StateIo<master_t<T>>> state_;
};

extern template class ZeroTrainer<float>;
extern template class ZeroTrainer<bf16>;
extern template class ZeroTrainer<fp16>;
extern template class ZeroTrainer<double>;

}  // namespace partrain::parallel::zero
