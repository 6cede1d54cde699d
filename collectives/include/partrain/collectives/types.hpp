// Vocabulary of the collectives library: element types, reduction operators, operations, algorithms, their names
// on the command line, and the nccl-tests bus-bandwidth factors.
//
// Bus bandwidth (nccl-tests' PERFORMANCE.md): algbw = bytes/time; busbw = algbw · factor, where the factor makes
// the figure comparable with the link bandwidth whatever the rank count n:
//   allreduce 2(n−1)/n;  reduce_scatter, allgather, alltoall (n−1)/n;  broadcast, send/recv 1.
// Here "bytes" is the size of the whole vector (count · element size): the allreduce/broadcast buffer, the
// reduce_scatter input, the allgather output, the alltoall send buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace partrain {
struct bf16;
struct fp16;
}  // namespace partrain

namespace partrain::coll {

/// Element types. BF16 and F16 (partrain::bf16, partrain::fp16: core/half.hpp) are reduced in fp32 inside each
/// chunk — every received chunk is widened, added in fp32 and stored with one rounding per reduction step, as NCCL's
/// 16-bit reductions do — so a ring of n ranks rounds each element n − 1 times, a one-pass shared-memory sum once.
enum class DataType { Float, Double, BF16, F16 };
enum class ReduceOp { Sum, Max };
enum class Op { Allreduce, ReduceScatter, Allgather, Broadcast, Alltoall, Barrier, SendRecv };
enum class Algo { Auto, Ring, RecDbl, Tree, Vendor, Shm, Hier };

constexpr int kNumOps = 7;

std::size_t size_of(DataType t);
const char* name(DataType t);
const char* name(ReduceOp op);
const char* name(Op op);
const char* name(Algo a);

/// Parsers for command-line values; return false on an unknown name.
bool parse(const std::string& s, DataType& out);
bool parse(const std::string& s, Op& out);
bool parse(const std::string& s, Algo& out);

/// The collective operations a benchmark can time (send/recv and barrier excluded).
const std::vector<Op>& collective_ops();
/// Algorithms that implement `op` (besides Auto).
std::vector<Algo> algorithms_for(Op op);
bool implements(Algo a, Op op);

double busbw_factor(Op op, int nranks);

/// Elements of block i when `count` elements are split over n ranks: the first count mod n blocks get one more.
inline std::int64_t block_count(std::int64_t count, int n, int i) { return count / n + (i < count % n ? 1 : 0); }
inline std::int64_t block_offset(std::int64_t count, int n, int i) {
  return std::int64_t(i) * (count / n) + (i < count % n ? i : count % n);
}

template <class T>
constexpr DataType datatype_of();
template <>
constexpr DataType datatype_of<float>() { return DataType::Float; }
template <>
constexpr DataType datatype_of<double>() { return DataType::Double; }
template <>
constexpr DataType datatype_of<bf16>() { return DataType::BF16; }
template <>
constexpr DataType datatype_of<fp16>() { return DataType::F16; }

}  // namespace partrain::coll
