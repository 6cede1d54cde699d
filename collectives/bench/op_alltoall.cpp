// alltoall: the vector of `count` elements is n blocks of count/n; block j of rank r goes to rank j. Rank r's
// send buffer holds input(r, i); it receives in block j rank j's elements r·(count/n) … . busbw factor (n−1)/n.
// With --skew S > 1 the shares are uneven, as a mixture-of-experts layer's are when one expert rank is hot: every rank
// sends `count` elements in all, S times as many to rank 0 as to each other rank (alltoallv); rank 0 receives S times
// the others' bytes, and the time is what that costs (busbw still assumes even shares).
#include "bench_op.hpp"

#include <algorithm>
#include <vector>

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

class AlltoallSkewed : public Alltoall {
 public:
  explicit AlltoallSkewed(double skew) : skew_(skew) {}
  std::int64_t recv_elems(std::int64_t count, int n, int) const override {
    return std::int64_t(double(count) * std::min(skew_, double(n))) + n;
  }
  Request run(Communicator& c, void* send, void* recv, std::int64_t count, DataType dt, Algo a, bool) const override {
    const auto sc = counts(count, c.size());
    const std::vector<std::int64_t> rc(std::size_t(c.size()), sc[std::size_t(c.rank())]);
    return c.alltoallv(send, sc.data(), recv, rc.data(), dt, a);
  }
  std::int64_t wrong(const void*, const void* recv, std::int64_t count, DataType dt, int n, int r, bool) const override {
    const auto sc = counts(count, n);
    std::int64_t before = 0;  // what each rank sends ranks 0..r−1 first
    for (int q = 0; q < r; ++q) before += sc[std::size_t(q)];
    const std::int64_t mine = sc[std::size_t(r)];
    return count_wrong(dt, recv, mine * n,
                       [&](std::int64_t k) { return input_value(int(k / std::max<std::int64_t>(mine, 1)), before + k % std::max<std::int64_t>(mine, 1), dt); });
  }

 private:
  /// Elements every rank sends to each rank: weight S for rank 0, 1 for the others, `count` in all.
  std::vector<std::int64_t> counts(std::int64_t count, int n) const {
    std::vector<std::int64_t> c(static_cast<std::size_t>(n));
    const double total = skew_ + double(n - 1);
    std::int64_t given = 0;
    for (int j = 1; j < n; ++j) given += c[std::size_t(j)] = std::int64_t(double(count) / total);
    c[0] = count - given;
    return c;
  }
  double skew_;
};
}  // namespace

std::unique_ptr<BenchOp> make_alltoall() { return std::make_unique<Alltoall>(); }
std::unique_ptr<BenchOp> make_alltoall_skewed(double skew) { return std::make_unique<AlltoallSkewed>(skew); }

std::unique_ptr<BenchOp> make_bench_op(Op op, double skew) {
  if (op == Op::Alltoall && skew != 1.0) return make_alltoall_skewed(skew);
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
