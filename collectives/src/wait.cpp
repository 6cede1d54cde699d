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
WaitCounters g_wait_counters;

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? int(n) : 1;
}

/// A colour shared by the processes of one running kernel (its boot id, hashed; the host name where there is none).
int machine_color() {
  std::string id;
  if (std::FILE* f = std::fopen("/proc/sys/kernel/random/boot_id", "r")) {
    char buf[64] = {};
    if (std::fgets(buf, sizeof buf, f)) id = buf;
    std::fclose(f);
  }
  if (id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    id = host;
  }
  std::uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : id) h = (h ^ c) * 16777619u;
  return int(h & 0x7fffffff);
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
  std::fprintf(stderr, "partrain: error: watchdog: rank %d waited %.1f s for %s%s%s (--timeout %g; 0 turns it off)\n",
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
  // The ranks that share this rank's cores are those under the same kernel — MPI's shared-memory "node" can be
  // smaller: hosts that are containers or network namespaces of one machine (scripts/vcluster) are separate nodes to
  // MPI but run on the same cores. Measured there, 2 namespaces x 2 ranks on 2 cores, spinning ranks made every
  // 64 KiB allreduce take 10-48 ms (scheduler ticks) against 49-89 us yielding (docs/vcluster.md).
  return machine_ranks(comm) > usable_cores() ? WaitPolicy::Yield : WaitPolicy::Spin;
}

int machine_ranks(MPI_Comm comm) {
  MPI_Comm machine;
  PARTRAIN_MPI_CHECK(MPI_Comm_split(comm, machine_color(), 0, &machine));
  int n = 1;
  PARTRAIN_MPI_CHECK(MPI_Comm_size(machine, &n));
  PARTRAIN_MPI_CHECK(MPI_Comm_free(&machine));
  return n;
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

void idle(WaitPolicy policy) {
  ++g_wait_counters.turns;
  if (policy == WaitPolicy::Yield) {
    ++g_wait_counters.yields;
    sched_yield();
  }
}

WaitCounters wait_counters() { return g_wait_counters; }

void wait(MPI_Request& req, MPI_Status* status, WaitPolicy policy, const char* what) {
  int done = 0;
  const double t0 = watchdog_now();
  for (unsigned i = 1;; ++i) {
    PARTRAIN_MPI_CHECK(MPI_Test(&req, &done, status));
    if (done) return;
    idle(policy);
    if (i % kWatchdogEvery == 0) watchdog_check(t0, what, -1);
  }
}

void wait_all(std::vector<MPI_Request>& reqs, WaitPolicy policy) {
  int done = 0;
  const double t0 = watchdog_now();
  for (unsigned i = 1;; ++i) {
    PARTRAIN_MPI_CHECK(MPI_Testall(int(reqs.size()), reqs.data(), &done, MPI_STATUSES_IGNORE));
    if (done) return;
    idle(policy);
    if (i % kWatchdogEvery == 0) watchdog_check(t0, "MPI requests", -1);
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
