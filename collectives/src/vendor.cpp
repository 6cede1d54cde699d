#include "vendor.hpp"

#include "partrain/core/error.hpp"
#include "partrain/core/half.hpp"

namespace partrain::coll {

bool VendorRequest::test() {
  int done = 0;
  PARTRAIN_MPI_CHECK(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
  return done != 0;
}

namespace {
/// MPI has no bf16 or fp16: each is a 2-byte type of its own (two handles, so that the reduction can tell them apart)
/// reduced by a user operation that adds (or compares) in fp32 and rounds once per element, as our algorithms do.
MPI_Datatype& half_type_slot(DataType dt) {
  static MPI_Datatype types[2] = {MPI_DATATYPE_NULL, MPI_DATATYPE_NULL};
  return types[dt == DataType::BF16 ? 0 : 1];
}

MPI_Op& half_op_slot(ReduceOp op) {
  static MPI_Op ops[2] = {MPI_OP_NULL, MPI_OP_NULL};
  return ops[op == ReduceOp::Sum ? 0 : 1];
}

/// Frees the types and operations when MPI_Finalize deletes MPI_COMM_SELF's attributes (MPI's hook for it; MPICH
/// reports handles left behind).
int free_half_handles(MPI_Comm, int, void*, void*) {
  for (DataType dt : {DataType::BF16, DataType::F16})
    if (half_type_slot(dt) != MPI_DATATYPE_NULL) MPI_Type_free(&half_type_slot(dt));
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max})
    if (half_op_slot(op) != MPI_OP_NULL) MPI_Op_free(&half_op_slot(op));
  return MPI_SUCCESS;
}
void free_at_finalize() {
  static bool registered = false;
  if (registered) return;
  registered = true;
  int key = MPI_KEYVAL_INVALID;
  PARTRAIN_MPI_CHECK(MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, free_half_handles, &key, nullptr));
  PARTRAIN_MPI_CHECK(MPI_Comm_set_attr(MPI_COMM_SELF, key, nullptr));
  PARTRAIN_MPI_CHECK(MPI_Comm_free_keyval(&key));
}

template <class H>
void half_combine(void* in, void* inout, int len, bool sum) {
  const H* a = static_cast<const H*>(in);
  H* b = static_cast<H*>(inout);
  if (sum)
    for (int i = 0; i < len; ++i) b[i] = float(a[i]) + float(b[i]);
  else
    for (int i = 0; i < len; ++i) b[i] = float(a[i]) > float(b[i]) ? a[i] : b[i];
}

template <bool kSum>
void half_op(void* in, void* inout, int* len, MPI_Datatype* dt) {
  if (*dt == half_type_slot(DataType::BF16)) half_combine<bf16>(in, inout, *len, kSum);
  else half_combine<fp16>(in, inout, *len, kSum);
}
}  // namespace

MPI_Datatype mpi_type(DataType dt) {
  switch (dt) {
    case DataType::Float: return MPI_FLOAT;
    case DataType::Double: return MPI_DOUBLE;
    case DataType::BF16:
    case DataType::F16: {
      MPI_Datatype& t = half_type_slot(dt);
      if (t == MPI_DATATYPE_NULL) {
        free_at_finalize();
        PARTRAIN_MPI_CHECK(MPI_Type_contiguous(2, MPI_BYTE, &t));
        PARTRAIN_MPI_CHECK(MPI_Type_commit(&t));
      }
      return t;
    }
  }
  return MPI_DATATYPE_NULL;
}

MPI_Op mpi_op(ReduceOp op, DataType dt) {
  if (dt == DataType::Float || dt == DataType::Double) return op == ReduceOp::Sum ? MPI_SUM : MPI_MAX;
  MPI_Op& o = half_op_slot(op);
  if (o == MPI_OP_NULL) {
    free_at_finalize();
    PARTRAIN_MPI_CHECK(MPI_Op_create(op == ReduceOp::Sum ? &half_op<true> : &half_op<false>, 1, &o));
  }
  return o;
}

void count_vendor(OpCounters& c, Op op, std::int64_t bytes, int n) {
  const auto b = std::int64_t(double(bytes) * busbw_factor(op, n));
  c.bytes_sent += b;
  c.bytes_received += b;
}

}  // namespace partrain::coll
