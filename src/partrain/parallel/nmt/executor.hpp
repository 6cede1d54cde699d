// One model-parallel rank's part of an NMT step (placement.hpp says which units it holds). Every unit runs over
// time in chunks of nmt.time_chunk steps: a unit's output chunk is sent to its consumers' ranks as soon as it is
// computed (nonblocking point-to-point through the collectives library), so layer l+1 works on chunk c on another
// rank while layer l computes chunk c+1 — the wavefront. The backward runs the other way: each unit takes its chunks
// in the reverse of its forward order and sends each chunk's input gradients back to their producers. The
// bidirectional layer's backward direction produces its first chunk last, so the layer above it starts only
// then (why GNMT keeps only the first layer bidirectional); the attention needs every encoder output before its
// first chunk.
//   forward:  target embedding (vocabulary shards, summed over the group) → this rank's units in the global order →
//             the generator's vocabulary shard over every row → vocabulary-parallel cross-entropy
//   backward: generator shard (its input gradient summed over the group) → this rank's units in reverse global
//             order (attention and the bottom decoder layer interleaved chunk by chunk) → source embedding →
//             target embedding shards (the bottom decoder layer's input gradient broadcast over the group)
// Each rank walks its units in an order consistent with one global order, so no rank waits for work that waits
// for it. Time spent waiting for a chunk is this rank's pipeline idle time (fill and drain).
#pragma once

#include <map>
#include <memory>

#include "partrain/collectives/mpi_communicator.hpp"
#include "partrain/parallel/nmt/placement.hpp"
#include "partrain/parallel/tp/vocab_parallel.hpp"

namespace partrain::parallel::nmt {

/// The parameters one model-parallel rank holds: its units' LSTM weights, the source embedding on the source rank,
/// and its vocabulary shard of the target embedding and the generator (whole-tensor names; ShardSpec rows).
template <class T>
class NmtStage : public models::Model<T> {
 public:
  NmtStage(const models::NmtConfig& cfg, const Placement& pl, int rank);
};

/// What one step on this rank measured.
struct StepTimes {
  double forward_s = 0, backward_s = 0;
  double idle_forward_s = 0, idle_backward_s = 0;  ///< waiting for a chunk from another rank
  double group_comm_s = 0;                          ///< the group's collectives (embedding, logits' statistics)
  double compute_s = 0;                             ///< units, generator and embeddings, less the waits
  std::int64_t p2p_bytes = 0;                       ///< sent to other ranks of the group
};

template <class T>
class NmtExecutor {
 public:
  /// `mp`: the replica's model-parallel group (rank = placement rank); `B` samples per replica; chunks of `chunk`
  /// time steps. InputError when the message tags would exceed MPI_TAG_UB.
  NmtExecutor(const models::NmtConfig& cfg, const Placement& pl, coll::MpiCommunicator& mp, NmtStage<T>& stage,
              std::int64_t B, std::int64_t chunk);
  ~NmtExecutor();
  /// Forward, loss and (with `backward`) backward of the replica's batch: gradients of (Σ losses)·loss_scale
  /// accumulated into the stage's; returns the batch's loss sum (equal on every rank of the group). Collective
  /// over the group.
  double step(const models::Batch<T>& batch, double loss_scale, bool backward, StepTimes& times);
  std::int64_t chunks() const { return nchunks_; }

 private:
  struct Local;
  struct Stream;
  void post_forward_receives();
  void post_backward_receives();
  void forward_unit(Local& l, StepTimes& t);
  void backward_unit(Local& l, std::int64_t chunk, StepTimes& t);
  void attention_forward(Local& l, StepTimes& t);
  void attention_backward_chunk(Local& l, std::int64_t chunk, StepTimes& t);
  View2<T> input_rows(int stream, std::int64_t chunk, StepTimes& t, bool forward_phase);
  void send_rows(int stream, const View2<T>& src, std::int64_t chunk, int dest_rank, int tag);
  void wait_recv(int id, double& idle);
  /// Chunk c's output gradients from every consumer of stream s (waiting for the ones sent from other ranks).
  std::vector<View2<T>> contributions(Stream& s, std::int64_t c, double& idle);
  int ftag(int stream, std::int64_t chunk) const;
  int btag(int stream, int consumer, std::int64_t chunk) const;
  std::pair<std::int64_t, std::int64_t> rows_of(std::int64_t chunk) const;

  models::NmtConfig cfg_;
  const Placement& pl_;
  coll::MpiCommunicator& mp_;
  NmtStage<T>& stage_;
  std::int64_t B_, S_, N_, chunk_, nchunks_;
  int me_;
  std::vector<std::unique_ptr<Local>> locals_;
  std::map<int, std::unique_ptr<Stream>> streams_;
  std::vector<coll::Request> sends_;
  std::map<int, coll::Request> recvs_;
  int next_recv_ = 0;
  IndexView1 src_tm_, dec_tm_, tgt_tm_, lengths_;
  View2<T> xs_, y_, dtop_, logits_;
  View1<acc_t<T>> losses_;
  VocabParallelLoss<T> ce_;
  TpContext group_;
};

extern template class NmtStage<float>;
extern template class NmtStage<double>;
extern template class NmtStage<bf16>;
extern template class NmtStage<fp16>;
extern template class NmtExecutor<float>;
extern template class NmtExecutor<double>;
extern template class NmtExecutor<bf16>;
extern template class NmtExecutor<fp16>;

}  // namespace partrain::parallel::nmt
