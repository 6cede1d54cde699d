#include "vendor.hpp"

#include "partrain/core/error.hpp"

namespace partrain::coll {

bool VendorRequest::test() {
  int done = 0;
  PARTRAIN_MPI_CHECK(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
  return done != 0;
}

MPI_Datatype mpi_type(DataType dt) { return dt == DataType::Float ? MPI_FLOAT : MPI_DOUBLE; }
MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::Sum ? MPI_SUM : MPI_MAX; }

void count_vendor(OpCounters& c, Op op, std::int64_t bytes, int n) {
  const auto b = std::int64_t(double(bytes) * busbw_factor(op, n));
  c.bytes_sent += b;
  c.bytes_received += b;
}

}  // namespace partrain::coll
