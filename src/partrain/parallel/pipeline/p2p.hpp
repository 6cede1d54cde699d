// The point-to-point transfers between pipeline stages, named as Megatron-LM names them. Model chunk c lives on
// stage c mod p; the activation a chunk produces goes to the stage of chunk c+1 (send_forward / recv_forward) and
// the gradient of its input to the stage of chunk c−1 (send_backward / recv_backward). All are nonblocking sends
// and receives through the collectives library (counted as send/recv traffic); a message's tag says its direction,
// the receiving model chunk and the microbatch, so transfers of different microbatches never match each other.
// Megatron also pairs a send with the receive the stage needs next (send_forward_recv_backward, ...) so that both
// are in flight together; the executor gets the same by posting every receive one ahead of its list.
#pragma once

#include "partrain/collectives/mpi_communicator.hpp"
#include "partrain/core/types.hpp"
#include "partrain/parallel/pipeline/schedule.hpp"

namespace partrain::parallel::pipeline {

template <class T>
class StageLinks {
 public:
  /// `pp`: the pipeline group (rank = stage). InputError when the tags would not fit MPI's tag range.
  StageLinks(coll::MpiCommunicator& pp, const ScheduleSpec& s) : pp_(pp), s_(s), stage_(pp.rank()) {}

  /// The input of local chunk `chunk` for microbatch `mb`, from the previous model chunk.
  coll::Request recv_forward(const View2<T>& buf, int mb, int chunk) {
    return pp_.recv(buf.data(), std::int64_t(buf.size()), coll::datatype_of<T>(), prev_stage(), tag(0, mb, model_chunk(chunk)));
  }
  /// The output of local chunk `chunk`, to the next model chunk.
  coll::Request send_forward(const View2<T>& buf, int mb, int chunk) {
    return pp_.send(buf.data(), std::int64_t(buf.size()), coll::datatype_of<T>(), next_stage(), tag(0, mb, model_chunk(chunk) + 1));
  }
  /// The gradient of local chunk `chunk`'s output, from the next model chunk.
  coll::Request recv_backward(const View2<T>& buf, int mb, int chunk) {
    return pp_.recv(buf.data(), std::int64_t(buf.size()), coll::datatype_of<T>(), next_stage(), tag(1, mb, model_chunk(chunk)));
  }
  /// The gradient of local chunk `chunk`'s input, to the previous model chunk.
  coll::Request send_backward(const View2<T>& buf, int mb, int chunk) {
    return pp_.send(buf.data(), std::int64_t(buf.size()), coll::datatype_of<T>(), prev_stage(), tag(1, mb, model_chunk(chunk) - 1));
  }
  /// The largest tag used: 2·p·v·m − 1 (must not exceed MPI_TAG_UB).
  static std::int64_t max_tag(const ScheduleSpec& s) { return 2LL * s.chunks() * s.m - 1; }

 private:
  int model_chunk(int chunk) const { return chunk * s_.p + stage_; }
  int prev_stage() const { return (stage_ - 1 + s_.p) % s_.p; }
  int next_stage() const { return (stage_ + 1) % s_.p; }
  /// direction (0 forward, 1 backward), microbatch, the model chunk that receives the tensor
  int tag(int dir, int mb, int receiver) const { return (dir * s_.chunks() + receiver) * s_.m + mb; }

  coll::MpiCommunicator& pp_;
  ScheduleSpec s_;
  int stage_;
};

}  // namespace partrain::parallel::pipeline
