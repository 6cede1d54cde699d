// broadcast from rank 0: everyone ends with rank 0's input. busbw factor 1. (In place and out of place are the
// same call.)
#include "bench_op.hpp"

namespace partrain::coll::bench {
namespace {
class Broadcast : public BenchOp {
 public:
  Op op() const override { return Op::Broadcast; }
  std::int64_t send_elems(std::int64_t count, int, int) const override { return count; }
  std::int64_t recv_elems(std::int64_t, int, int) const override { return 0; }
  void init(void* send, void*, std::int64_t count, DataType dt, int, int r, bool) const override {
    fill(dt, send, count, [&](std::int64_t i) { return r == 0 ? input_value(0, i, dt) : -1.0; });
  }
  Request run(Communicator& c, void* send, void*, std::int64_t count, DataType dt, Algo a, bool) const override {
    return c.broadcast(send, count, dt, 0, a);
  }
  std::int64_t wrong(const void* send, const void*, std::int64_t count, DataType dt, int, int, bool) const override {
    return count_wrong(dt, send, count, [&](std::int64_t i) { return input_value(0, i, dt); });
  }
};
}  // namespace

std::unique_ptr<BenchOp> make_broadcast() { return std::make_unique<Broadcast>(); }
}  // namespace partrain::coll::bench
