#include "partrain/collectives/wait.hpp"

#include <algorithm>

#include <sched.h>
#include <unistd.h>

#include <time.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "partrain/core/error.hpp"

namespace partrain::coll {
namespace {
double g_watchdog_s = 0;
std::int64_t g_watchdog_step = -1;
bool g_policy_set = false;
WaitPolicy g_policy = WaitPolicy::Spin;

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? int(n) : 1;
}
}  // namespace

void set_watchdog(double seconds) { g_watchdog_s = seconds; }
double watchdog_seconds() { return g_watchdog_s; }
void set_watchdog_step(std::int64_t step) { g_watchdog_step = step; }

double watchdog_now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

void watchdog_check(double since, const char* what, int peer) {
  if (g_watchdog_s <= 0) return;
  const double waited = watchdog_now() - since;
  if (waited <= g_watchdog_s) return;
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  char peer_text[48] = "";
  if (peer >= 0) {
    const std::string w = what;
    const char* dir = w.find("send") != std::string::npos ? "to" : w.find("recv") != std::string::npos ? "from" : "with";
    std::snprintf(peer_text, sizeof peer_text, " %s rank %d", dir, peer);
  }
  char step_text[48] = "";
  if (g_watchdog_step >= 0) std::snprintf(step_text, sizeof step_text, " in step %lld", (long long)g_watchdog_step);
  std::fprintf(stderr, "partrain: error: watchdog: rank %d waited %.0f s for %s%s%s (--timeout %g; 0 turns it off)\n",
               rank, waited, what, peer_text, step_text, g_watchdog_s);
  std::fflush(stderr);
  const timespec pause{0, 300000000};  // the line reaches mpiexec before the job is torn down
  nanosleep(&pause, nullptr);
  MPI_Abort(MPI_COMM_WORLD, 124);
}

WaitPolicy detect_wait_policy(MPI_Comm comm) {
  if (const char* env = std::getenv("PARTRAIN_WAIT")) {
    if (std::strcmp(env, "spin") == 0) return WaitPolicy::Spin;
    if (std::strcmp(env, "yield") == 0) return WaitPolicy::Yield;
    throw InputError(std::string("PARTRAIN_WAIT = ") + env + ": must be spin or yield");
  }
  MPI_Comm node;
  PARTRAIN_MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  int local = 1;
  PARTRAIN_MPI_CHECK(MPI_Comm_size(node, &local));
  PARTRAIN_MPI_CHECK(MPI_Comm_free(&node));
  return local > usable_cores() ? WaitPolicy::Yield : WaitPolicy::Spin;
}

WaitPolicy wait_policy() {
  if (!g_policy_set) set_wait_policy(detect_wait_policy(MPI_COMM_WORLD));
  return g_policy;
}

void set_wait_policy(WaitPolicy p) {
  g_policy = p;
  g_policy_set = true;
}

const char* wait_policy_name(WaitPolicy p) { return p == WaitPolicy::Spin ? "spin" : "yield"; }

void wait(MPI_Request& req, MPI_Status* status, WaitPolicy policy, const char* what) {
  int done = 0;
  const double t0 = watchdog_now();
  for (unsigned i = 1;; ++i) {
    PARTRAIN_MPI_CHECK(MPI_Test(&req, &done, status));
    if (done) return;
    if (policy == WaitPolicy::Yield) sched_yield();
    if (i % 1024 == 0) watchdog_check(t0, what, -1);
  }
}

void wait_all(std::vector<MPI_Request>& reqs, WaitPolicy policy) {
  int done = 0;
  const double t0 = watchdog_now();
  for (unsigned i = 1;; ++i) {
    PARTRAIN_MPI_CHECK(MPI_Testall(int(reqs.size()), reqs.data(), &done, MPI_STATUSES_IGNORE));
    if (done) return;
    if (policy == WaitPolicy::Yield) sched_yield();
    if (i % 1024 == 0) watchdog_check(t0, "MPI requests", -1);
  }
}

void barrier(MPI_Comm comm, WaitPolicy policy) {
  MPI_Request req;
  PARTRAIN_MPI_CHECK(MPI_Ibarrier(comm, &req));
  wait(req, MPI_STATUS_IGNORE, policy, "a barrier");
}

void allreduce(const void* send, void* recv, int count, MPI_Datatype type, MPI_Op op, MPI_Comm comm,
               WaitPolicy policy) {
  MPI_Request req;
  PARTRAIN_MPI_CHECK(MPI_Iallreduce(send, recv, count, type, op, comm, &req));
  wait(req, MPI_STATUS_IGNORE, policy, "an allreduce");
}

std::array<double, 3> over_ranks(MPI_Comm comm, double value, WaitPolicy policy) {
  int n = 1;
  PARTRAIN_MPI_CHECK(MPI_Comm_size(comm, &n));
  std::vector<double> all(static_cast<std::size_t>(n));
  MPI_Request req;
  PARTRAIN_MPI_CHECK(MPI_Iallgather(&value, 1, MPI_DOUBLE, all.data(), 1, MPI_DOUBLE, comm, &req));
  wait(req, MPI_STATUS_IGNORE, policy, "an allgather");
  all.erase(std::remove_if(all.begin(), all.end(), [](double x) { return std::isnan(x); }), all.end());
  if (all.empty()) return {std::nan(""), std::nan(""), std::nan("")};
  std::sort(all.begin(), all.end());
  const std::size_t m = all.size() / 2;
  return {all.front(), all.size() % 2 ? all[m] : 0.5 * (all[m - 1] + all[m]), all.back()};
}

}  // namespace partrain::coll
