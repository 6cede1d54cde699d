// The partrain-collectives harness (nccl-tests style): for each message size and algorithm, warm up, barrier,
// time `iters` calls, gather every rank's time (min/avg/max; bandwidth uses the slowest rank, since a
// collective is done when its last rank is), verify one more call exactly, print a fixed-width row, and keep
// everything for the HDF5 result file.
#pragma once

#include <string>
#include <vector>

#include "bench_op.hpp"
#include "partrain/collectives/mpi_communicator.hpp"

namespace partrain::coll::bench {

struct Options {
  std::string op = "allreduce", algo = "auto", min_bytes = "1K", max_bytes = "16M", datatype = "float";
  double step_factor = 4;
  double skew = 1;  ///< alltoall: uneven shares, this many times as much to rank 0 (1: even)
  int iters = 20, warmup = 5;
  bool check = true, in_place = false, overwrite = false, zero_copy = false;
  std::string chunk = "256K", output;
  int pretend_node_size = 0;
};

/// Validated form of Options.
struct Plan {
  Op op = Op::Allreduce;
  std::vector<Algo> algos;  ///< one, or every algorithm implementing op (--algo all)
  DataType dt = DataType::Float;
  std::int64_t min_bytes = 0, max_bytes = 0, chunk_bytes = 0;
  double factor = 2;
  double skew = 1;
  int iters = 20, warmup = 5;
  bool check = true, in_place = false, zero_copy = false;
  bool quiet = false;  ///< no table (partrain-calibrate keeps the rows only)
  std::vector<std::int64_t> sizes;
};

/// "64M" → 67108864; K, M, G are powers of 1024. InputError naming `key` on anything else.
std::int64_t parse_size(const std::string& key, const std::string& text);
/// Checks every option (before any communication); InputError on the first bad one.
Plan make_plan(const Options& o);

struct Row {
  std::int64_t bytes = 0, count = 0;
  Algo algo = Algo::Auto, resolved = Algo::Auto;
  double t_min = 0, t_avg = 0, t_max = 0, algbw = 0, busbw = 0;  ///< seconds, GB/s (1e9)
  std::vector<double> t_rank;  ///< per-rank mean time per call (rank 0 only)
  double mem_busbw = 0;        ///< allreduce: allreduce_mem_busbw at this size (GB/s); 0 otherwise
  std::int64_t wrong = 0;      ///< summed over ranks; −1 when not checked
};

/// Single-core copy rate (bytes copied per second) of a 64 MiB memcpy, every rank at once; the minimum over ranks.
double measure_copy_bandwidth(MpiCommunicator& comm);

/// The memory traffic every allreduce of `bytes` on these buffers must do, as a local pass timed on the spot with
/// every rank at once, returned as a busbw (GB/s): out of place, each rank reads its input and writes its output
/// (the faster of a cached and a non-temporal copy of `bytes` from send to recv); in place, each rank reads and
/// writes `bytes` of its buffer once. No traffic between ranks is counted: the memory-bandwidth limit of the
/// private-buffer modes. (The zero-copy allreduce does the in-place traffic as two streams per rank, one in each
/// of two buffers, and may run a little faster than this one-stream pass.)
double allreduce_mem_busbw(MpiCommunicator& comm, char* send, char* recv, std::int64_t bytes, bool in_place,
                             int iters);

/// Runs the plan; prints rows on rank 0 as they complete.
std::vector<Row> run(MpiCommunicator& comm, const Plan& plan);

}  // namespace partrain::coll::bench
