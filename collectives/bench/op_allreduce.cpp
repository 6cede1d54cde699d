// allreduce (sum): every rank ends with Σ_r input(r, i) = n(n+1)/2 · (i mod 97 + 1). busbw factor 2(n−1)/n.
#include "bench_op.hpp"

namespace partrain::coll::bench {
namespace {
class Allreduce : public BenchOp {
 public:
  Op op() const override { return Op::Allreduce; }
  std::int64_t send_elems(std::int64_t count, int, int) const override { return count; }
  std::int64_t recv_elems(std::int64_t count, int, int) const override { return count; }
  void init(void* send, void*, std::int64_t count, DataType dt, int, int r, bool) const override {
    fill(dt, send, count, [&](std::int64_t i) { return input_value(r, i, dt); });
  }
  Request run(Communicator& c, void* send, void* recv, std::int64_t count, DataType dt, Algo a,
              bool in_place) const override {
    return c.allreduce(send, in_place ? send : recv, count, dt, ReduceOp::Sum, a);
  }
  std::int64_t wrong(const void* send, const void* recv, std::int64_t count, DataType dt, int n, int,
                     bool in_place) const override {
    return count_wrong(dt, in_place ? send : recv, count,
                       [&](std::int64_t i) { return input_sum(n, i, dt); });
  }
};
}  // namespace

std::unique_ptr<BenchOp> make_allreduce() { return std::make_unique<Allreduce>(); }
}  // namespace partrain::coll::bench
