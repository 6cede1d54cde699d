#include "partrain/collectives/types.hpp"

#include <cstring>

namespace partrain::coll {

std::size_t size_of(DataType t) {
  switch (t) {
    case DataType::Float: return 4;
    case DataType::Double: return 8;
    case DataType::BF16:
    case DataType::F16: return 2;
  }
  return 0;
}
const char* name(DataType t) {
  switch (t) {
    case DataType::Float: return "float";
    case DataType::Double: return "double";
    case DataType::BF16: return "bf16";
    case DataType::F16: return "fp16";
  }
  return "?";
}
const char* name(ReduceOp op) { return op == ReduceOp::Sum ? "sum" : "max"; }

const char* name(Op op) {
  static const char* names[] = {"allreduce", "reduce_scatter", "allgather", "broadcast",
                                "alltoall",  "barrier",        "send"};
  return names[static_cast<int>(op)];
}

const char* name(Algo a) {
  static const char* names[] = {"auto", "ring", "recdbl", "tree", "vendor", "shm", "hier"};
  return names[static_cast<int>(a)];
}

bool parse(const std::string& s, DataType& out) {
  if (s == "float") out = DataType::Float;
  else if (s == "double") out = DataType::Double;
  else if (s == "bf16") out = DataType::BF16;
  else if (s == "fp16") out = DataType::F16;
  else return false;
  return true;
}

bool parse(const std::string& s, Op& out) {
  for (int i = 0; i < kNumOps; ++i)
    if (s == name(Op(i))) {
      out = Op(i);
      return true;
    }
  return false;
}

bool parse(const std::string& s, Algo& out) {
  for (int i = 0; i <= static_cast<int>(Algo::Hier); ++i)
    if (s == name(Algo(i))) {
      out = Algo(i);
      return true;
    }
  return false;
}

const std::vector<Op>& collective_ops() {
  static const std::vector<Op> ops = {Op::Allreduce, Op::ReduceScatter, Op::Allgather, Op::Broadcast, Op::Alltoall};
  return ops;
}

bool implements(Algo a, Op op) {
  switch (op) {
    case Op::Allreduce:
      return a == Algo::Ring || a == Algo::RecDbl || a == Algo::Tree || a == Algo::Vendor || a == Algo::Shm ||
             a == Algo::Hier;
    case Op::ReduceScatter:
    case Op::Allgather: return a == Algo::Ring || a == Algo::RecDbl || a == Algo::Vendor || a == Algo::Shm;
    case Op::Broadcast: return a == Algo::Ring || a == Algo::Tree || a == Algo::Vendor || a == Algo::Shm;
    case Op::Alltoall: return a == Algo::Ring || a == Algo::Vendor;
    case Op::Barrier: return a == Algo::RecDbl || a == Algo::Vendor;
    case Op::SendRecv: return a == Algo::Vendor;
  }
  return false;
}

std::vector<Algo> algorithms_for(Op op) {
  std::vector<Algo> out;
  for (Algo a : {Algo::Ring, Algo::RecDbl, Algo::Tree, Algo::Vendor, Algo::Shm, Algo::Hier})
    if (implements(a, op)) out.push_back(a);
  return out;
}

double busbw_factor(Op op, int n) {
  switch (op) {
    case Op::Allreduce: return n > 1 ? 2.0 * (n - 1) / n : 0.0;
    case Op::ReduceScatter:
    case Op::Allgather:
    case Op::Alltoall: return n > 1 ? double(n - 1) / n : 0.0;
    default: return 1.0;
  }
}

}  // namespace partrain::coll
