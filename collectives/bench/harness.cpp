#include "harness.hpp"

#include <Kokkos_Core.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>

#include "partrain/collectives/wait.hpp"
#include "partrain/core/error.hpp"
#include "partrain/core/log.hpp"
#include "partrain/core/timer.hpp"
#include "../src/reduce.hpp"  // the copy and reduction loops the algorithms use

namespace partrain::coll::bench {

std::int64_t parse_size(const std::string& key, const std::string& text) {
  const std::string why = "not a size (a non-negative number with an optional K, M or G suffix)";
  if (text.empty()) input_error(key, "\"\"", why);
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(text, &pos);
  } catch (const std::exception&) {
    input_error(key, text, why);
  }
  std::string suffix = text.substr(pos);
  double mult = 1;
  if (suffix == "K" || suffix == "k") mult = 1024.0;
  else if (suffix == "M" || suffix == "m") mult = 1024.0 * 1024;
  else if (suffix == "G" || suffix == "g") mult = 1024.0 * 1024 * 1024;
  else if (!suffix.empty()) input_error(key, text, why);
  if (!(v >= 0) || !std::isfinite(v)) input_error(key, text, why);
  const double bytes = v * mult;
  if (bytes > 64.0 * 1024 * 1024 * 1024) input_error(key, text, "larger than 64 GiB");
  return std::int64_t(bytes);
}

Plan make_plan(const Options& o) {
  Plan p;
  if (!parse(o.op, p.op) || std::find(collective_ops().begin(), collective_ops().end(), p.op) == collective_ops().end())
    input_error("--op", o.op, "unknown operation (allreduce, reduce_scatter, allgather, broadcast, alltoall)");
  if (o.algo == "all") {
    p.algos = algorithms_for(p.op);
  } else {
    Algo a;
    if (!parse(o.algo, a)) input_error("--algo", o.algo, "unknown algorithm (ring, recdbl, tree, vendor, shm, hier, auto, all)");
    if (a != Algo::Auto && !implements(a, p.op))
      input_error("--algo", o.algo, std::string("does not implement ") + name(p.op));
    p.algos = {a};
  }
  if (!parse(o.datatype, p.dt)) input_error("--datatype", o.datatype, "must be float, double, bf16 or fp16");
  p.min_bytes = parse_size("--minbytes", o.min_bytes);
  p.max_bytes = parse_size("--maxbytes", o.max_bytes);
  if (p.min_bytes > p.max_bytes)
    input_error("--minbytes", o.min_bytes, "is above --maxbytes = " + o.max_bytes);
  p.chunk_bytes = parse_size("--chunk", o.chunk);
  if (p.chunk_bytes < 8) input_error("--chunk", o.chunk, "must be at least 8 bytes");
  if (!(o.step_factor > 1.0)) input_error("--stepfactor", std::to_string(o.step_factor), "must be > 1");
  if (o.iters < 1) input_error("--iters", std::to_string(o.iters), "must be >= 1");
  if (o.warmup < 0) input_error("--warmup", std::to_string(o.warmup), "must be >= 0");
  if (!(o.skew >= 1.0) || !std::isfinite(o.skew)) input_error("--skew", std::to_string(o.skew), "must be >= 1");
  if (o.skew != 1.0 && p.op != Op::Alltoall)
    input_error("--skew", std::to_string(o.skew), "is for --op alltoall (uneven shares: alltoallv)");
  if (o.skew != 1.0 && o.in_place) input_error("--skew", std::to_string(o.skew), "alltoallv is not in place (--inplace)");
  p.skew = o.skew;
  p.factor = o.step_factor;
  p.iters = o.iters;
  p.warmup = o.warmup;
  p.check = o.check;
  p.in_place = o.in_place || o.zero_copy;
  p.zero_copy = o.zero_copy;
  if (o.zero_copy && p.op != Op::Allreduce)
    input_error("--zero-copy", "true", "is an allreduce mode (in place on a shared-window buffer)");
  for (double b = double(p.min_bytes); std::int64_t(b) <= p.max_bytes; b = std::max(b * p.factor, b + 1)) {
    p.sizes.push_back(std::int64_t(b));
    if (p.sizes.size() > 1000) input_error("--stepfactor", std::to_string(o.step_factor), "gives over 1000 sizes");
  }
  return p;
}

double measure_copy_bandwidth(MpiCommunicator& comm) {
  const std::size_t bytes = 64u << 20;
  Kokkos::View<char*, Kokkos::HostSpace> a("comm/bench.copy_src", bytes), b("comm/bench.copy_dst", bytes);
  double best = 1e30;
  for (int i = 0; i < 5; ++i) {
    barrier(comm.comm());
    const double t0 = wall_time_s();
    std::memcpy(b.data(), a.data(), bytes);
    best = std::min(best, wall_time_s() - t0);
  }
  double rate = double(bytes) / best, min_rate = 0;
  allreduce(&rate, &min_rate, 1, MPI_DOUBLE, MPI_MIN, comm.comm());
  return min_rate;
}

double allreduce_mem_busbw(MpiCommunicator& comm, char* send, char* recv, std::int64_t bytes, bool in_place,
                             int iters) {
  if (bytes == 0) return 0;
  auto timed = [&](const std::function<void()>& pass) {
    pass();  // warm-up
    barrier(comm.comm());
    const double t0 = fenced_time_s();
    for (int i = 0; i < iters; ++i) pass();
    double t = (fenced_time_s() - t0) / iters, slowest = 0;
    allreduce(&t, &slowest, 1, MPI_DOUBLE, MPI_MAX, comm.comm());
    return slowest;
  };
  double t = 0;
  if (in_place) {
    const std::vector<void*> x{recv};
    const std::vector<const void*> cx{recv};
    t = timed([&] { reduce_many(DataType::Float, ReduceOp::Sum, x, cx, bytes / 4); });  // x = x: one read, one write
  } else {
    const double cached = timed([&] { copy_bytes(recv, send, bytes); });
    t = std::min(cached, timed([&] {
                   stream_copy(recv, send, bytes);
                   stream_fence();
                 }));
  }
  return t > 0 ? double(bytes) / t / 1e9 * busbw_factor(Op::Allreduce, comm.size()) : 0;
}

namespace {

void print_header(const Plan& p, int n) {
  log0("#");
  log0("#  op: " + std::string(name(p.op)) + ", " + std::to_string(n) + " ranks, " + name(p.dt) + ", " +
       (p.zero_copy ? "zero-copy (shared-window buffer, in place)" : p.in_place ? "in place" : "out of place") + ", iters " + std::to_string(p.iters) + ", warm-up " +
       std::to_string(p.warmup) + ", chunk " + format_bytes(double(p.chunk_bytes)) + ", wait " +
       wait_policy_name(wait_policy()) +
       (p.skew != 1.0 ? ", uneven (alltoallv): " + std::to_string(p.skew).substr(0, 5) + "x to rank 0" : std::string()));
  log0("#  time: mean per call on each rank, min/avg/max over ranks; algbw = size/max time; busbw = algbw x " +
       std::string(p.op == Op::Allreduce ? "2(n-1)/n" : p.op == Op::Broadcast ? "1" : "(n-1)/n"));
  log0("#");
  if (p.op == Op::Allreduce)
    log0("#  mem: a local pass moving each rank's unavoidable bytes (copy send -> recv; in place: read and write the\n"
         "#       buffer once), all ranks at once, timed at each size, as busbw: the memory-bandwidth limit");
  log0("#");
  log0("#        size      count    type    algo     time_min     time_avg     time_max    algbw    busbw      mem"
       "    %mem  vs_vendor  #wrong");
  log0("#         (B)   (elems)                        (us)         (us)         (us)   (GB/s)   (GB/s)   (GB/s)");
}

// The optional columns are built as std::string, never as a char array initialised from a shorter string literal:
// GCC 12.2 with -mavx512f (-march=native on AVX-512 CPUs), even at -O0, fills such an array by broadcasting the
// literal's first 8 bytes over the whole array and drops the terminating NUL, which corrupted this table.
std::string format_row(const Row& r, DataType dt, double vendor_busbw) {
  auto printf_str = [](const char* f, auto... v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v...);
    return std::string(buf);
  };
  const std::string ratio = vendor_busbw > 0 && r.resolved != Algo::Vendor
                                ? printf_str("%9.2f", r.busbw / vendor_busbw)
                                : std::string(8, ' ') + "-";
  const std::string mem = r.mem_busbw > 0 ? printf_str("%8.3f %6.1f%%", r.mem_busbw, 100.0 * r.busbw / r.mem_busbw)
                                          : std::string(7, ' ') + "-" + std::string(7, ' ') + "-";
  const std::string wrong = r.wrong >= 0 ? printf_str("%6lld", (long long)r.wrong) : std::string(5, ' ') + "-";
  std::string algo = name(r.algo);
  if (r.algo == Algo::Auto) algo += std::string("/") + name(r.resolved);
  char buf[256];
  std::snprintf(buf, sizeof buf, "%13lld %10lld %7s %11s %12.2f %12.2f %12.2f %8.3f %8.3f %s  %s  %s",
                (long long)r.bytes, (long long)r.count, name(dt), algo.c_str(), r.t_min * 1e6, r.t_avg * 1e6,
                r.t_max * 1e6, r.algbw, r.busbw, mem.c_str(), ratio.c_str(), wrong.c_str());
  return buf;
}

}  // namespace

std::vector<Row> run(MpiCommunicator& comm, const Plan& p) {
  const int n = comm.size(), r = comm.rank();
  const auto bop = make_bench_op(p.op, p.skew);
  const std::size_t es = size_of(p.dt);
  comm.set_chunk_bytes(p.chunk_bytes);
  // Buffers for the largest size, allocated once (Kokkos zero-fills them: pre-touched).
  const std::int64_t max_count = bop->count_for(p.max_bytes, es, n);
  Kokkos::View<char*, Kokkos::HostSpace> send_view("comm/bench.send", std::size_t(bop->send_elems(max_count, n, r)) * es + 64),
      recv_view("comm/bench.recv", std::size_t(std::max<std::int64_t>(bop->recv_elems(max_count, n, r), 1)) * es + 64);
  struct {
    char* ptr;
    char* data() const { return ptr; }
  } send{send_view.data()}, recv{recv_view.data()};
  if (p.zero_copy)  // the buffer lives in a window shared by the node's ranks: the allreduce runs in one pass
    send.ptr = static_cast<char*>(comm.shared_buffer(bop->send_elems(max_count, n, r) * std::int64_t(es) + 64));
  if (!p.quiet) print_header(p, n);
  std::vector<Row> rows;
  for (const std::int64_t bytes : p.sizes) {
    const std::int64_t count = bop->count_for(bytes, es, n);
    std::vector<Row> at_size;
    double vendor_busbw = 0, mem = 0;
    if (p.op == Op::Allreduce) {
      bop->init(send.data(), recv.data(), count, p.dt, n, r, p.in_place);
      mem = allreduce_mem_busbw(comm, send.data(), p.in_place ? send.data() : recv.data(), count * std::int64_t(es),
                                    p.in_place, p.iters);
    }
    for (const Algo a : p.algos) {
      Row row;
      row.bytes = count * std::int64_t(es);
      row.count = count;
      row.algo = a;
      row.resolved = comm.resolve(p.op, a, row.bytes);
      bop->init(send.data(), recv.data(), count, p.dt, n, r, p.in_place);
      for (int w = 0; w < p.warmup; ++w) bop->run(comm, send.data(), recv.data(), count, p.dt, a, p.in_place).wait();
      barrier(comm.comm());
      const double t0 = fenced_time_s();
      for (int i = 0; i < p.iters; ++i) bop->run(comm, send.data(), recv.data(), count, p.dt, a, p.in_place).wait();
      const double t = (fenced_time_s() - t0) / p.iters;
      allreduce(&t, &row.t_min, 1, MPI_DOUBLE, MPI_MIN, comm.comm());
      allreduce(&t, &row.t_max, 1, MPI_DOUBLE, MPI_MAX, comm.comm());
      double sum = 0;
      allreduce(&t, &sum, 1, MPI_DOUBLE, MPI_SUM, comm.comm());
      row.t_avg = sum / n;
      row.t_rank.resize(std::size_t(n));
      MPI_Request req;
      PARTRAIN_MPI_CHECK(MPI_Igather(&t, 1, MPI_DOUBLE, row.t_rank.data(), 1, MPI_DOUBLE, 0, comm.comm(), &req));
      coll::wait(req);
      row.algbw = row.t_max > 0 ? double(row.bytes) / row.t_max / 1e9 : 0;
      row.busbw = row.algbw * busbw_factor(p.op, n);
      row.mem_busbw = mem;
      row.wrong = -1;
      if (p.check) {
        bop->init(send.data(), recv.data(), count, p.dt, n, r, p.in_place);
        bop->run(comm, send.data(), recv.data(), count, p.dt, a, p.in_place).wait();
        const std::int64_t mine = bop->wrong(send.data(), recv.data(), count, p.dt, n, r, p.in_place);
        allreduce(&mine, &row.wrong, 1, MPI_INT64_T, MPI_SUM, comm.comm());
      }
      if (row.resolved == Algo::Vendor) vendor_busbw = row.busbw;
      at_size.push_back(row);
    }
    for (const auto& row : at_size) {
      if (!p.quiet) log0(format_row(row, p.dt, vendor_busbw));
      rows.push_back(row);
    }
  }
  return rows;
}

}  // namespace partrain::coll::bench
