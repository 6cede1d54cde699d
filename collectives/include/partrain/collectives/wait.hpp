// The one way partrain waits on MPI (DESIGN.md, Waiting on MPI).
//
// MPICH busy-polls inside blocking calls. With more ranks on a node than cores, a spinning rank steals the core
// of the rank it is waiting for: measured on 2 cores at 4 ranks, 1000 one-float allreduces took 5.4 ms each with
// MPI_Allreduce and 12 µs with MPI_Iallreduce + a loop of MPI_Test and sched_yield(). Every wait in the suite
// goes through wait() with a policy: Spin (MPI_Test in a tight loop) or Yield (sched_yield between tests), the
// default when the ranks on this node outnumber its cores. PARTRAIN_WAIT=spin|yield overrides the choice.
#pragma once

#include <mpi.h>

#include <array>
#include <cstdint>
#include <vector>

namespace partrain::coll {

enum class WaitPolicy { Spin, Yield };

/// Spin, or Yield when the ranks of `comm` on this machine (the same running kernel, which may hold several MPI
/// nodes: containers, network namespaces) exceed the cores this process may use; PARTRAIN_WAIT overrides.
/// Collective over `comm` (it splits the communicator once).
WaitPolicy detect_wait_policy(MPI_Comm comm);
/// How many ranks of `comm` run under this rank's kernel (its boot id): the ranks sharing this machine's cores,
/// whichever MPI node each is on. Collective over `comm`.
int machine_ranks(MPI_Comm comm);
/// The process-wide policy (set by set_wait_policy, else detected on MPI_COMM_WORLD at first use).
WaitPolicy wait_policy();
void set_wait_policy(WaitPolicy p);
const char* wait_policy_name(WaitPolicy p);

/// The watchdog (--timeout): a wait that lasts longer than `seconds` ends the job — one line on the rank that noticed,
/// naming what it waited for, the peer, the step and how long, then MPI_Abort with exit code 124 — instead of hanging.
/// 0 turns it off (the default until a mini-app sets it).
void set_watchdog(double seconds);
double watchdog_seconds();
/// The training step the rank is in, for the watchdog's line (-1: none).
void set_watchdog_step(std::int64_t step);
/// Seconds on a monotonic clock.
double watchdog_now();
/// A waiting loop's check, every so often: aborts when the wait started at `since` has lasted longer than the timeout.
/// `what`: "allreduce", "recv", …; `peer`: the rank waited for, or -1 (a collective over its group).
void watchdog_check(double since, const char* what, int peer);

/// Drives MPI's progress engine once (an MPI_Iprobe): a wait on something MPI does not see (the shared-memory
/// algorithms' flags) calls it now and then, so that this rank's nonblocking sends and receives — which a peer may be
/// waiting for before it can join — keep moving. Without it, a rendezvous send posted before a shm collective
/// stalls until the collective ends, and a peer that needs that message first never arrives: a deadlock.
void progress_mpi();

/// One turn of a waiting loop that found nothing done yet: sched_yield() under the Yield policy, nothing under Spin.
/// Every waiting loop of the suite calls it between its tests (the helpers below, Request::wait, the trainers' own
/// loops), so the policy is applied in one place and counted.
void idle(WaitPolicy policy = wait_policy());
/// What idle() did in this process: turns taken and, of those, sched_yield() calls. Tests check that waits follow the
/// policy (a yield per turn when oversubscribed, none when spinning) instead of timing them.
struct WaitCounters {
  std::int64_t turns = 0, yields = 0;
};
WaitCounters wait_counters();
/// How many turns a waiting loop takes between two looks at the watchdog's clock: often enough that, with every turn
/// a sched_yield() that may hand the core away for a time slice, the watchdog fires within a fraction of a second of
/// its timeout (it once looked every 1024 turns: seconds late on a loaded machine).
constexpr unsigned kWatchdogEvery = 16;

/// The turns of one waiting loop over requests the helpers below do not see (a trainer's own loop over several
/// requests): each turn() is an idle() and, every kWatchdogEvery turns, a look at the watchdog naming `what`.
class WaitTurns {
 public:
  explicit WaitTurns(const char* what, int peer = -1) : what_(what), peer_(peer), since_(watchdog_now()) {}
  void turn() {
    idle();
    if (++turns_ % kWatchdogEvery == 0) watchdog_check(since_, what_, peer_);
  }

 private:
  const char* what_;
  int peer_;
  double since_;
  unsigned turns_ = 0;
};

/// Waits for one request under the policy; `status` may be MPI_STATUS_IGNORE.
void wait(MPI_Request& req, MPI_Status* status = MPI_STATUS_IGNORE, WaitPolicy policy = wait_policy(),
          const char* what = "an MPI request");
/// Waits for all requests.
void wait_all(std::vector<MPI_Request>& reqs, WaitPolicy policy = wait_policy());
/// A barrier that waits through the helper.
void barrier(MPI_Comm comm, WaitPolicy policy = wait_policy());
/// Allreduce through MPI_Iallreduce + the helper (for small control messages: verdicts, timings).
void allreduce(const void* send, void* recv, int count, MPI_Datatype type, MPI_Op op, MPI_Comm comm,
               WaitPolicy policy = wait_policy());

/// Min, median and max over the ranks of `comm` of one value per rank (every rank gets them; the median of an
/// even count is the mean of the two middle values). A rank with nothing to report passes NaN and is left out
/// (all NaN: NaN).
std::array<double, 3> over_ranks(MPI_Comm comm, double value, WaitPolicy policy = wait_policy());

}  // namespace partrain::coll
