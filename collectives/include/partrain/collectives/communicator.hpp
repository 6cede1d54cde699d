// A group of ranks and the nonblocking operations over it (DESIGN.md, Collectives). Implementations: MPI (the
// suite's own algorithms over point-to-point messages, or the MPI library's own — "vendor") and NCCL (vendor).
//
// Buffer conventions (count = elements of the whole vector; block(i) = block_count/offset(count, n, i)):
//   allreduce(send, recv, count)        recv = ⊕ over ranks of send; in place when send == recv
//   reduce_scatter(send, recv, count)   send: count elements; recv: block(rank) of the reduced vector;
//                                       in place when send == recv: the result is left at recv + offset(rank)
//   allgather(send, recv, count)        send: block(rank); recv: count elements, block i from rank i;
//                                       in place when send == recv + offset(rank)
//   broadcast(buf, count, root)
//   alltoall(send, recv, count)         count elements per peer: block j of send goes to rank j; in place allowed
//   alltoallv(send, scounts, recv, rcounts)  scounts[j] elements go to rank j, rcounts[i] come from rank i, each
//                                       buffer packed in rank order (the counts must agree pairwise: what j sends
//                                       i is what i expects from j; an MoE layer exchanges them first); not in
//                                       place; the count arrays are copied, the call may return before it is done
// Any count (0 too, and not a multiple of n), any rank count. The MPI backend takes host buffers; NCCL device ones.
#pragma once

#include <cstdint>
#include <string>

#include "partrain/collectives/counters.hpp"
#include "partrain/collectives/request.hpp"
#include "partrain/collectives/types.hpp"

namespace partrain::coll {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// "mpi" or "nccl"
  virtual const char* backend() const = 0;
  /// The algorithm a call with `algo` runs for a message of `bytes` (resolves Auto; rejects an algorithm that
  /// does not implement op with InputError).
  virtual Algo resolve(Op op, Algo algo, std::int64_t bytes) const = 0;

  virtual Request allreduce(const void* send, void* recv, std::int64_t count, DataType dt, ReduceOp op,
                            Algo algo = Algo::Auto) = 0;
  virtual Request reduce_scatter(const void* send, void* recv, std::int64_t count, DataType dt, ReduceOp op,
                                 Algo algo = Algo::Auto) = 0;
  virtual Request allgather(const void* send, void* recv, std::int64_t count, DataType dt,
                            Algo algo = Algo::Auto) = 0;
  virtual Request broadcast(void* buf, std::int64_t count, DataType dt, int root, Algo algo = Algo::Auto) = 0;
  virtual Request alltoall(const void* send, void* recv, std::int64_t count, DataType dt,
                           Algo algo = Algo::Auto) = 0;
  virtual Request alltoallv(const void* send, const std::int64_t* send_counts, void* recv,
                            const std::int64_t* recv_counts, DataType dt, Algo algo = Algo::Auto) = 0;
  virtual Request barrier(Algo algo = Algo::Auto) = 0;
  virtual Request send(const void* buf, std::int64_t count, DataType dt, int peer, int tag) = 0;
  virtual Request recv(void* buf, std::int64_t count, DataType dt, int peer, int tag) = 0;

  // Typed forms.
  template <class T>
  Request allreduce(const T* s, T* r, std::int64_t n, ReduceOp op = ReduceOp::Sum, Algo a = Algo::Auto) {
    return allreduce(static_cast<const void*>(s), static_cast<void*>(r), n, datatype_of<T>(), op, a);
  }
  template <class T>
  Request reduce_scatter(const T* s, T* r, std::int64_t n, ReduceOp op = ReduceOp::Sum, Algo a = Algo::Auto) {
    return reduce_scatter(static_cast<const void*>(s), static_cast<void*>(r), n, datatype_of<T>(), op, a);
  }
  template <class T>
  Request allgather(const T* s, T* r, std::int64_t n, Algo a = Algo::Auto) {
    return allgather(static_cast<const void*>(s), static_cast<void*>(r), n, datatype_of<T>(), a);
  }
  template <class T>
  Request broadcast(T* b, std::int64_t n, int root, Algo a = Algo::Auto) {
    return broadcast(static_cast<void*>(b), n, datatype_of<T>(), root, a);
  }
  template <class T>
  Request alltoall(const T* s, T* r, std::int64_t n, Algo a = Algo::Auto) {
    return alltoall(static_cast<const void*>(s), static_cast<void*>(r), n, datatype_of<T>(), a);
  }

  template <class T>
  Request alltoallv(const T* s, const std::int64_t* sc, T* r, const std::int64_t* rc, Algo a = Algo::Auto) {
    return alltoallv(static_cast<const void*>(s), sc, static_cast<void*>(r), rc, datatype_of<T>(), a);
  }

  Counters& counters() { return counters_; }
  const Counters& counters() const { return counters_; }

 protected:
  Counters counters_;
};

}  // namespace partrain::coll
