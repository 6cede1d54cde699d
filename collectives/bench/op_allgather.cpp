// allgather: rank r contributes block r (its inputs at the block's global indices); everyone ends with all
// blocks. busbw factor (n−1)/n.
#include "bench_op.hpp"

namespace partrain::coll::bench {
namespace {
class Allgather : public BenchOp {
 public:
  Op op() const override { return Op::Allgather; }
  std::int64_t send_elems(std::int64_t count, int n, int r) const override { return block_count(count, n, r); }
  std::int64_t recv_elems(std::int64_t count, int, int) const override { return count; }
  void init(void* send, void* recv, std::int64_t count, DataType dt, int n, int r, bool in_place) const override {
    const std::int64_t off = block_offset(count, n, r);
    void* mine = in_place ? offset(recv, off, dt) : send;
    fill(dt, mine, block_count(count, n, r), [&](std::int64_t i) { return input_value(r, off + i, dt); });
  }
  Request run(Communicator& c, void* send, void* recv, std::int64_t count, DataType dt, Algo a,
              bool in_place) const override {
    const void* mine = in_place ? offset(recv, block_offset(count, c.size(), c.rank()), dt) : send;
    return c.allgather(mine, recv, count, dt, a);
  }
  std::int64_t wrong(const void*, const void* recv, std::int64_t count, DataType dt, int n, int,
                     bool) const override {
    std::int64_t bad = 0;
    for (int o = 0; o < n; ++o) {
      const std::int64_t off = block_offset(count, n, o);
      bad += count_wrong(dt, offset(recv, off, dt), block_count(count, n, o),
                         [&](std::int64_t i) { return input_value(o, off + i, dt); });
    }
    return bad;
  }
};
}  // namespace

std::unique_ptr<BenchOp> make_allgather() { return std::make_unique<Allgather>(); }
}  // namespace partrain::coll::bench
