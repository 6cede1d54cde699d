#include "partrain/collectives/request.hpp"

namespace partrain::coll {

void progress_mpi() {
  int flag = 0;
  MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
}

void Request::wait(WaitPolicy policy) {
  const double t0 = watchdog_now();
  for (unsigned i = 1; !test(); ++i) {
    idle(policy);
    if (i % 64 == 0) progress_mpi();
    if (i % kWatchdogEvery == 0) watchdog_check(t0, what_, peer_);
  }
}

void wait_all(std::vector<Request>& reqs, WaitPolicy policy) {
  const double t0 = watchdog_now();
  for (unsigned i = 1;; ++i) {
    bool all = true;
    const Request* open = nullptr;
    for (auto& r : reqs) {
      all = r.test() && all;
      if (!r.done() && !open) open = &r;
    }
    if (all) return;
    idle(policy);
    if (i % 64 == 0) progress_mpi();
    if (i % kWatchdogEvery == 0 && open) watchdog_check(t0, open->what(), open->peer());
  }
}

}  // namespace partrain::coll
