// alltoall: the vector of `count` elements is n blocks of count/n; block j of rank r goes to rank j. Rank r's
// send buffer holds input(r, i); it receives in block j rank j's elements r·(count/n) … . busbw factor (n−1)/n.
#include "bench_op.hpp"

namespace partrain::coll::bench {
namespace {
class Alltoall : public BenchOp {
 public:
  Op op() const override { return Op::Alltoall; }
  std::int64_t count_for(std::int64_t bytes, std::size_t esize, int n) const override {
    return bytes / std::int64_t(esize) / n * n;
  }
  std::int64_t send_elems(std::int64_t count, int, int) const override { return count; }
  std::int64_t recv_elems(std::int64_t count, int, int) const override { return count; }
  void init(void* send, void*, std::int64_t count, DataType dt, int, int r, bool) const override {
    fill(dt, send, count, [&](std::int64_t i) { return input_value(r, i, dt); });
  }
  Request run(Communicator& c, void* send, void* recv, std::int64_t count, DataType dt, Algo a,
              bool in_place) const override {
    return c.alltoall(send, in_place ? send : recv, count / c.size(), dt, a);
  }
  std::int64_t wrong(const void* send, const void* recv, std::int64_t count, DataType dt, int n, int r,
                     bool in_place) const override {
    const std::int64_t per = count / n;
    return count_wrong(dt, in_place ? send : recv, count,
                       [&](std::int64_t k) { return input_value(int(k / per), std::int64_t(r) * per + k % per, dt); });
  }
};
}  // namespace

std::unique_ptr<BenchOp> make_alltoall() { return std::make_unique<Alltoall>(); }

std::unique_ptr<BenchOp> make_bench_op(Op op) {
  switch (op) {
    case Op::Allreduce: return make_allreduce();
    case Op::ReduceScatter: return make_reduce_scatter();
    case Op::Allgather: return make_allgather();
    case Op::Broadcast: return make_broadcast();
    case Op::Alltoall: return make_alltoall();
    default: return nullptr;
  }
}
}  // namespace partrain::coll::bench
