// partrain-ps with ps.hybrid = true: the sparse-embedding parameter server (BytePS's and the recommendation
// systems' division of labour). The embedding tables live on the S server ranks as key-value shards — row r of table
// f is key k = f·rows + r, held by server k mod S (hashing spreads the hot rows of a skewed id distribution over the
// servers, where a range partition would put them all on one) — and the dense layers are replicated on the W worker
// ranks and summed among them by partrain-dp's GradientReducer (bucketed, overlapped with the backward).
//
// A step, bsp (every rank takes part, in lockstep):
//   1. pull: each worker finds the distinct rows its share of the batch touches, table by table, and sends each
//      server the keys it holds (an alltoall of counts, an alltoallv of keys); the servers answer with the rows
//   2. the worker's model holds only those rows (its tables are as large as its share can touch, batch ids remapped
//      into them) and runs forward and backward; the dense buckets' allreduce starts as their layers finish
//   3. push: the touched rows' gradients go back to their servers (an alltoallv), while the dense allreduce finishes
//   4. each server sums a key's gradients over the workers, in worker order, and updates only those rows (lazy
//      rows: AdaGrad's accumulator, or plain SGD); the workers apply the same optimizer to the dense parameters
// With AdaGrad (or SGD without momentum) and no weight decay a row whose gradient is zero does not move, so the lazy
// update IS the dense one: the run equals partrain-ref's on the same model (bit for bit with one worker). Adam's
// moments would decay on untouched rows, which lazy rows skip: refused (ps_config.cpp).
#pragma once

#include <memory>
#include <vector>

#include "partrain/models/model_config.hpp"
#include "partrain/parallel/dp/gradient_reducer.hpp"
#include "partrain/parallel/trainer.hpp"

namespace partrain::parallel::ps {

/// Bytes one worker moves per step (sent + received) in each design — the performance model's and the summary's
/// comparison: `rows` distinct rows pulled (and pushed) by the worker, `dense` dense parameters, `tables` embedding
/// parameters, W workers, `elem` bytes per value. Keys travel as 8 bytes each.
struct HybridBytes {
  double sparse = 0;    ///< keys out, rows in, row gradients out: rows · (8 + 2·D·elem), and the counts' alltoall
  double dense = 0;     ///< the ring allreduce of the dense gradients: 2(W−1)/W · dense · elem each way
  double dense_ps = 0;  ///< a dense parameter server: the whole model pulled and pushed, 2 · (tables + dense) · elem
  double dp = 0;        ///< pure data parallelism: the ring allreduce of the whole model, 2(W−1)/W · Ψ · elem each way
  double hybrid() const { return sparse + dense; }
};
HybridBytes hybrid_bytes(double rows, double dim, double dense, double tables, int servers, int workers, double elem);

template <class T>
class HybridTrainer : public Trainer<T> {
 public:
  using BeforeUpdate = typename Trainer<T>::BeforeUpdate;

  /// Collective over `world`: ranks [0, servers) are servers, the rest workers.
  HybridTrainer(const models::ModelSpec& spec, const models::Dataset<T>& data, const models::TrainSpec& train,
                coll::MpiCommunicator& world, int servers, const DpOptions& dp);
  ~HybridTrainer() override;

  StepRecord step(std::int64_t step, const BeforeUpdate& before_update = {}) override;
  std::string describe() const override;
  std::vector<io::NamedTensor> gather_full(bool grads) override;
  std::vector<std::pair<std::string, bool>> self_check() override;
  coll::Counters counters() const override { return counters_; }
  std::vector<std::string> exposed_comm_phases() const override { return {"pull", "push", "comm_exposed"}; }
  std::string step_note(const StepRecord& rec) const override;
  NamedFigures summary(const RunMedians& m) override;
  NamedStrings attributes() const override;
  std::vector<std::string> summary_lines() const override;

 private:
  bool server() const { return world_.rank() < servers_; }
  int workers() const { return world_.size() - servers_; }
  /// Keys out, rows in: the tables of the worker's model hold its batch's rows, the batch's ids remapped to them.
  void pull();
  void server_update();
  std::int64_t table_elems() const { return spec_.sparse.table_numel(); }

  models::ModelSpec spec_;
  const models::Dataset<T>& data_;
  models::TrainSpec train_;
  coll::MpiCommunicator& world_;
  int servers_;
  std::unique_ptr<coll::MpiCommunicator> workers_comm_;
  // worker
  std::unique_ptr<models::Model<T>> model_;  ///< tables of `cap_` rows: the rows this worker's share can touch
  std::unique_ptr<models::Optimizer<T>> opt_;  ///< the dense parameters'
  std::unique_ptr<GradientReducer<T>> reducer_;
  models::Batch<T> batch_;
  IndexView1 global_ids_;  ///< the batch's ids into the full tables (batch_.tokens holds the remapped ones)
  typename models::Model<T>::Workspace ws_;
  Share share_;
  std::int64_t cap_ = 0, dense_begin_ = 0;
  std::vector<std::vector<std::int64_t>> slot_of_key_;  ///< per server: the compact row (f·cap + i) of each key sent
  // server: the rows of keys ≡ rank (mod S), slot k / S; AdaGrad's accumulator beside them
  std::vector<T> rows_, acc_;
  std::vector<std::int64_t> touched_;  ///< this step's slots, ascending
  std::vector<T> grad_sum_;            ///< their summed gradients, in that order
  // the exchange (world): counts and packed buffers in rank order
  std::vector<std::int64_t> send_n_, recv_n_;
  std::vector<double> keys_out_, keys_in_;
  std::vector<T> rows_out_, rows_in_;    ///< the pull: a server's rows out, a worker's rows in
  std::vector<T> grads_out_, grads_in_;  ///< the push: a worker's row gradients out, a server's in
  // measured
  coll::Counters counters_;
  double rows_pulled_ = 0, steps_ = 0;
  std::int64_t sparse_bytes_ = 0, dense_bytes_ = 0;
  std::vector<std::string> lines_;  ///< the summary's bytes line (set by summary())
};

extern template class HybridTrainer<float>;
extern template class HybridTrainer<double>;

}  // namespace partrain::parallel::ps
