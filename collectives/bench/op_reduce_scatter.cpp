// reduce_scatter (sum): rank r ends with block r of the reduced vector. busbw factor (n−1)/n.
#include "bench_op.hpp"

namespace partrain::coll::bench {
namespace {
class ReduceScatter : public BenchOp {
 public:
  Op op() const override { return Op::ReduceScatter; }
  std::int64_t send_elems(std::int64_t count, int, int) const override { return count; }
  std::int64_t recv_elems(std::int64_t count, int n, int r) const override { return block_count(count, n, r); }
  void init(void* send, void*, std::int64_t count, DataType dt, int, int r, bool) const override {
    fill(dt, send, count, [&](std::int64_t i) { return input_value(r, i, dt); });
  }
  Request run(Communicator& c, void* send, void* recv, std::int64_t count, DataType dt, Algo a,
              bool in_place) const override {
    return c.reduce_scatter(send, in_place ? send : recv, count, dt, ReduceOp::Sum, a);
  }
  std::int64_t wrong(const void* send, const void* recv, std::int64_t count, DataType dt, int n, int r,
                     bool in_place) const override {
    const std::int64_t off = block_offset(count, n, r);
    const void* out = in_place ? offset(send, off, dt) : recv;
    return count_wrong(dt, out, block_count(count, n, r),
                       [&](std::int64_t i) { return input_sum(n, off + i, dt); });
  }
};
}  // namespace

std::unique_ptr<BenchOp> make_reduce_scatter() { return std::make_unique<ReduceScatter>(); }
}  // namespace partrain::coll::bench
