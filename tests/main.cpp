// GoogleTest main for every partrain test binary: initialises MPI and Kokkos, runs the tests on every rank,
// prints on rank 0 (other ranks print their failures only, prefixed with the rank), and combines the verdict:
// the binary fails on every rank when a test failed on any rank.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

#include "partrain/collectives/wait.hpp"
#include "partrain/core/runtime.hpp"

namespace {
class RankFailurePrinter : public testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?",
                 r.line_number(), r.summary());
  }

 private:
  int rank_;
};
}  // namespace

int main(int argc, char** argv) {
  partrain::Runtime rt(argc, argv);
  testing::InitGoogleTest(&argc, argv);
  if (rt.rank() != 0) {
    auto& listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(rt.rank()));
  }
  const int local_fail = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int any_fail = 0;
  partrain::coll::allreduce(&local_fail, &any_fail, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rt.rank() == 0 && any_fail && !local_fail) std::fprintf(stderr, "a test failed on another rank\n");
  return any_fail;
}
