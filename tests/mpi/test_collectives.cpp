// Every operation × algorithm that can run (and auto) × counts {0, 1, 7, 4099, 262144} × in place / out of place × float and
// double, at whatever rank count the test runs (registered at np 1, 2, 3, 4; on the virtual cluster at 2 nodes × 1
// and × 2, where shm cannot span the nodes and auto picks hier), verified exactly.
#include <gtest/gtest.h>

#include "coll_test_util.hpp"
#include "partrain/core/error.hpp"
#include "partrain/core/half.hpp"
#include "partrain/core/rng.hpp"

using namespace partrain;
using namespace partrain::coll;
using namespace partrain::test;

namespace {
using Counts = std::vector<std::int64_t>;
const Counts kCounts = {0, 1, 7, 4099, 262144};

std::vector<Algo> with_auto(const MpiCommunicator& c, Op op) {
  auto a = runnable_algorithms(c, op);
  a.push_back(Algo::Auto);
  return a;
}

// Counts the mismatches so a failure reports one line, not a million.
template <class T, class F>
std::int64_t wrong(const T* got, std::int64_t n, F expected) {
  std::int64_t bad = 0;
  for (std::int64_t i = 0; i < n; ++i) bad += got[i] != T(expected(i));
  return bad;
}

template <class T>
void check_allreduce(MpiCommunicator& c, const Counts& counts = kCounts) {
  const int n = c.size(), r = c.rank();
  for (Algo a : with_auto(c, Op::Allreduce))
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max})
      for (std::int64_t count : counts)
        for (bool in_place : {false, true}) {
          SCOPED_TRACE(std::string(name(a)) + " " + name(op) + " count " + std::to_string(count) +
                       (in_place ? " in place" : ""));
          auto send = inputs<T>(r, count);
          std::vector<T> recv(static_cast<std::size_t>(count), T(-1));
          T* out = in_place ? send.data() : recv.data();
          c.allreduce(send.data(), out, count, op, a).wait();
          auto expect = [&](std::int64_t i) { return op == ReduceOp::Sum ? sum_value(n, i) : max_value(n, i); };
          EXPECT_EQ(wrong(out, count, expect), 0);
          if (!in_place) {
            EXPECT_EQ(send, inputs<T>(r, count)) << "input modified";
          }
        }
}

template <class T>
void check_reduce_scatter(MpiCommunicator& c) {
  const int n = c.size(), r = c.rank();
  for (Algo a : with_auto(c, Op::ReduceScatter))
    for (std::int64_t count : kCounts)
      for (bool in_place : {false, true}) {
        SCOPED_TRACE(std::string(name(a)) + " count " + std::to_string(count) + (in_place ? " in place" : ""));
        auto send = inputs<T>(r, count);
        const std::int64_t off = block_offset(count, n, r), nb = block_count(count, n, r);
        std::vector<T> recv(static_cast<std::size_t>(nb), T(-1));
        c.reduce_scatter(send.data(), in_place ? send.data() : recv.data(), count, ReduceOp::Sum, a).wait();
        const T* out = in_place ? send.data() + off : recv.data();
        EXPECT_EQ(wrong(out, nb, [&](std::int64_t i) { return sum_value(n, off + i); }), 0);
        if (!in_place) {
          EXPECT_EQ(send, inputs<T>(r, count)) << "input modified";
        }
      }
}

template <class T>
void check_allgather(MpiCommunicator& c) {
  const int n = c.size(), r = c.rank();
  // block i comes from rank i: fill with that rank's inputs at the block's global indices
  auto expected = [&](std::int64_t count, std::int64_t i) {
    int owner = 0;
    while (owner + 1 < n && block_offset(count, n, owner + 1) <= i) ++owner;
    return input_value(owner, i);
  };
  for (Algo a : with_auto(c, Op::Allgather))
    for (std::int64_t count : kCounts)
      for (bool in_place : {false, true}) {
        SCOPED_TRACE(std::string(name(a)) + " count " + std::to_string(count) + (in_place ? " in place" : ""));
        const std::int64_t off = block_offset(count, n, r), nb = block_count(count, n, r);
        auto mine = inputs<T>(r, nb, off);
        std::vector<T> recv(static_cast<std::size_t>(count), T(-1));
        if (in_place) std::copy(mine.begin(), mine.end(), recv.begin() + off);
        c.allgather(in_place ? recv.data() + off : mine.data(), recv.data(), count, a).wait();
        EXPECT_EQ(wrong(recv.data(), count, [&](std::int64_t i) { return expected(count, i); }), 0);
      }
}

template <class T>
void check_broadcast(MpiCommunicator& c, const Counts& counts = kCounts) {
  const int n = c.size(), r = c.rank();
  for (Algo a : with_auto(c, Op::Broadcast))
    for (std::int64_t count : counts)
      for (int root : {0, n - 1}) {
        SCOPED_TRACE(std::string(name(a)) + " count " + std::to_string(count) + " root " + std::to_string(root));
        auto buf = r == root ? inputs<T>(root, count) : std::vector<T>(static_cast<std::size_t>(count), T(-1));
        c.broadcast(buf.data(), count, root, a).wait();
        EXPECT_EQ(wrong(buf.data(), count, [&](std::int64_t i) { return input_value(root, i); }), 0);
      }
}

template <class T>
void check_alltoall(MpiCommunicator& c) {
  const int n = c.size(), r = c.rank();
  for (Algo a : with_auto(c, Op::Alltoall))
    for (std::int64_t count : {0, 1, 7, 4099})
      for (bool in_place : {false, true}) {
        SCOPED_TRACE(std::string(name(a)) + " count " + std::to_string(count) + (in_place ? " in place" : ""));
        // block j of rank r's send: values for (r, j): input_value(r, j·count + i)
        auto send = inputs<T>(r, count * n);
        std::vector<T> recv(static_cast<std::size_t>(count * n), T(-1));
        T* out = in_place ? send.data() : recv.data();
        c.alltoall(send.data(), out, count, a).wait();
        // block j of the result came from rank j, which sent its block r
        EXPECT_EQ(wrong(out, count * n, [&](std::int64_t k) {
                    const std::int64_t j = k / (count ? count : 1), i = k % (count ? count : 1);
                    return input_value(int(j), std::int64_t(r) * count + i);
                  }),
                  0);
      }
}

/// Uneven counts, zeros among them (an MoE layer's tokens per expert rank): rank r sends vcount(r, j) elements to j.
std::int64_t vcount(int r, int j, std::int64_t scale) { return ((r * 7 + j * 3) % 5) * scale; }

template <class T>
void check_alltoallv(MpiCommunicator& c) {
  const int n = c.size(), r = c.rank();
  for (Algo a : with_auto(c, Op::Alltoall))
    for (std::int64_t scale : {0, 1, 1001}) {
      SCOPED_TRACE(std::string(name(a)) + " scale " + std::to_string(scale));
      Counts sc(static_cast<std::size_t>(n)), rc(static_cast<std::size_t>(n)), sd(static_cast<std::size_t>(n) + 1, 0);
      std::int64_t rtot = 0;
      for (int j = 0; j < n; ++j) {
        sc[std::size_t(j)] = vcount(r, j, scale);
        rc[std::size_t(j)] = vcount(j, r, scale);
        sd[std::size_t(j) + 1] = sd[std::size_t(j)] + sc[std::size_t(j)];
        rtot += rc[std::size_t(j)];
      }
      auto send = inputs<T>(r, sd[std::size_t(n)]);
      std::vector<T> recv(std::size_t(rtot), T(-1));
      c.alltoallv(send.data(), sc.data(), recv.data(), rc.data(), a).wait();
      // block j came from rank j: its elements for r, which sit after what j sends to ranks 0..r−1
      std::int64_t at = 0, bad = 0;
      for (int j = 0; j < n; ++j) {
        std::int64_t before = 0;
        for (int q = 0; q < r; ++q) before += vcount(j, q, scale);
        for (std::int64_t i = 0; i < rc[std::size_t(j)]; ++i) bad += recv[std::size_t(at + i)] != T(input_value(j, before + i));
        at += rc[std::size_t(j)];
      }
      EXPECT_EQ(bad, 0);
    }
}
}  // namespace

TEST(Collectives, AllreduceFloatAndDouble) {
  MpiCommunicator c(MPI_COMM_WORLD);
  check_allreduce<float>(c);
  check_allreduce<double>(c);
}

TEST(Collectives, ReduceScatter) {
  MpiCommunicator c(MPI_COMM_WORLD);
  check_reduce_scatter<float>(c);
  check_reduce_scatter<double>(c);
}

TEST(Collectives, Allgather) {
  MpiCommunicator c(MPI_COMM_WORLD);
  check_allgather<float>(c);
  check_allgather<double>(c);
}

TEST(Collectives, Broadcast) {
  MpiCommunicator c(MPI_COMM_WORLD);
  check_broadcast<float>(c);
  check_broadcast<double>(c);
}

TEST(Collectives, Alltoall) {
  MpiCommunicator c(MPI_COMM_WORLD);
  check_alltoall<float>(c);
  check_alltoall<double>(c);
}

TEST(Collectives, AlltoallvUnevenCounts) {
  MpiCommunicator c(MPI_COMM_WORLD);
  check_alltoallv<float>(c);
  check_alltoallv<double>(c);
}

TEST(Collectives, SmallChunksPipelineTheRing) {
  MpiCommunicator c(MPI_COMM_WORLD);
  c.set_chunk_bytes(64);  // many chunks per block (a few hundred at 20011 elements), uneven tails
  const Counts counts = {0, 1, 7, 4099, 20011};  // not 262144: 16384 chunks per block are minutes oversubscribed
  check_allreduce<float>(c, counts);
  check_broadcast<double>(c, counts);
}

TEST(Collectives, BarrierAndSendRecv) {
  MpiCommunicator c(MPI_COMM_WORLD);
  for (Algo a : {Algo::RecDbl, Algo::Vendor, Algo::Auto}) c.barrier(a).wait();
  const int n = c.size(), r = c.rank();
  std::vector<double> out(5, double(r)), in(5, -1);
  auto rq = c.recv(in.data(), 5, DataType::Double, (r - 1 + n) % n, 7);
  auto sq = c.send(out.data(), 5, DataType::Double, (r + 1) % n, 7);
  sq.wait();
  rq.wait();
  EXPECT_EQ(in, std::vector<double>(5, double((r - 1 + n) % n)));
}

TEST(Collectives, RejectsAlgorithmsThatDoNotImplementTheOp) {
  MpiCommunicator c(MPI_COMM_WORLD);
  std::vector<float> x(4);
  EXPECT_THROW(c.alltoall(x.data(), x.data(), 1, Algo::Tree), InputError);
  EXPECT_THROW(c.broadcast(x.data(), 4, c.size(), Algo::Tree), InputError);
}

// The 16-bit types (bf16, fp16): every algorithm (and auto) sums random values — not exact — in fp32 inside each
// chunk and stores with one rounding per reduction step: within (n − 1)·u·Σ_r|x_r| of the exact sum of the 16-bit
// inputs (one rounding per ring hop or tree level at most n − 1; u = 2^-8 bf16, 2^-11 fp16) plus the 16-bit value's
// own spacing near zero, and bit-identical on every rank (what keeps data-parallel replicas equal). reduce_scatter
// the same; allgather, broadcast and alltoall move 16-bit values unchanged.
template <class H>
void check_half(MpiCommunicator& c) {
  const int n = c.size(), r = c.rank();
  const double u = unit_roundoff<H>();
  const CounterRng rng(5, precision_name<H>());
  auto value = [&](int rank, std::int64_t i) { return H(float(rng.normal(std::uint64_t(rank) * 1000003 + std::uint64_t(i)))); };
  for (Algo a : with_auto(c, Op::Allreduce))
    for (std::int64_t count : {std::int64_t(1), std::int64_t(4099)}) {
      SCOPED_TRACE(std::string(name(a)) + " " + precision_name<H>() + " count " + std::to_string(count));
      std::vector<H> x(static_cast<std::size_t>(count));
      for (std::int64_t i = 0; i < count; ++i) x[std::size_t(i)] = value(r, i);
      c.allreduce(x.data(), x.data(), count, ReduceOp::Sum, a).wait();
      std::int64_t bad = 0;
      double checksum = 0;
      for (std::int64_t i = 0; i < count; ++i) {
        double exact = 0, mag = 0;
        for (int q = 0; q < n; ++q) {
          exact += double(float(value(q, i)));
          mag += std::abs(double(float(value(q, i))));
        }
        const double got = double(float(x[std::size_t(i)]));
        bad += std::abs(got - exact) > std::max(n - 1, 1) * u * mag + std::ldexp(1.0, -24) ? 1 : 0;
        checksum += got * double(i % 13 + 1);
      }
      EXPECT_EQ(bad, 0);
      const auto cs = over_ranks(c.comm(), checksum);
      EXPECT_EQ(cs[0], cs[2]) << "ranks hold different sums";
    }
  for (Algo a : with_auto(c, Op::Allgather)) {  // moved unchanged
    SCOPED_TRACE(std::string("allgather ") + name(a) + " " + precision_name<H>());
    const std::int64_t count = 4099, off = block_offset(count, n, r), nb = block_count(count, n, r);
    std::vector<H> all(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < nb; ++i) all[std::size_t(off + i)] = value(0, off + i);
    c.allgather(all.data() + off, all.data(), count, a).wait();
    std::int64_t bad = 0;
    for (std::int64_t i = 0; i < count; ++i) bad += all[std::size_t(i)].bits != value(0, i).bits;
    EXPECT_EQ(bad, 0);
  }
}

TEST(Collectives, Bf16AndFp16ReduceInFp32) {
  MpiCommunicator c(MPI_COMM_WORLD);
  check_half<bf16>(c);
  check_half<fp16>(c);
}
