// Uses, with Kokkos initialised as partrain's buffers need, libpartrain_collectives (a ring allreduce among the job's ranks) and libpartrain (the performance model's
// cost of that allreduce) through find_package(partrain).
#include <Kokkos_Core.hpp>
#include <mpi.h>

#include <cstdio>
#include <vector>

#include "partrain/collectives/mpi_communicator.hpp"
#include "partrain/perf/collective_model.hpp"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  Kokkos::initialize(argc, argv);  // partrain's buffers are Kokkos views
  int ok = 1;
  {
    partrain::coll::MpiCommunicator comm(MPI_COMM_WORLD);
    std::vector<float> x(1000, 1.0f), y(1000, 0.0f);
    comm.allreduce(x.data(), y.data(), 1000, partrain::coll::DataType::Float, partrain::coll::ReduceOp::Sum,
                   partrain::coll::Algo::Ring)
        .wait();
    ok = y[999] == float(comm.size());
    const auto t = partrain::perf::cost_terms("ring", "allreduce", comm.size(), 4000);
    if (comm.rank() == 0)
      std::printf("consumer: allreduce over %d ranks %s; ring's alpha terms %.0f\n", comm.size(), ok ? "right" : "WRONG", t.a);
  }
  Kokkos::finalize();
  MPI_Finalize();
  return ok ? 0 : 1;
}
