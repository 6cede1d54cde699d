#include "partrain/core/runtime.hpp"

#include <dlfcn.h>
#include <mpi.h>

#include <Kokkos_Core.hpp>
#include <sched.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "partrain/core/error.hpp"
#include "partrain/core/memory.hpp"

namespace partrain {

void pin_blas_to_one_thread() {
  if (std::getenv("OPENBLAS_NUM_THREADS")) return;
  using set_fn = void (*)(int);
  if (auto set = reinterpret_cast<set_fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(1);
}

std::string kokkos_version_line() {
  return std::to_string(KOKKOS_VERSION / 10000) + "." + std::to_string(KOKKOS_VERSION / 100 % 100) + "." +
         std::to_string(KOKKOS_VERSION % 100) + " (" + Kokkos::DefaultExecutionSpace::name() + ")";
}

void register_kokkos_version_line() { set_kokkos_version_line(kokkos_version_line); }

namespace {
const bool kKokkosVersionLine = (register_kokkos_version_line(), true);  // every program that links the runtime

/// Thrown on a rank whose input was fine when another rank's was not: exit 2 without a message.
struct PeerInputFailure {};

bool has_arg(int argc, char** argv, const char* a) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], a) == 0) return true;
  return false;
}
}  // namespace

Runtime::Runtime(int& argc, char**& argv) {
  int provided = 0;
  PARTRAIN_MPI_CHECK(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided));
  PARTRAIN_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  PARTRAIN_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
  pin_blas_to_one_thread();
  // Kokkos prints its own options for --help (and -h): keep those arguments from it, so the program's usage comes
  // first; --kokkos-help asks for Kokkos' options (printed by rank 0 only).
  kokkos_help_ = has_arg(argc, argv, "--kokkos-help");
  std::vector<char*> kargs;
  for (int i = 0; i < argc; ++i) {
    const bool help = std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0;
    const bool khelp = std::strcmp(argv[i], "--kokkos-help") == 0;
    if (!help && !(khelp && rank_ != 0)) kargs.push_back(argv[i]);
  }
  int kargc = int(kargs.size());
  kargs.push_back(nullptr);
  char** kargv = kargs.data();
  Kokkos::initialize(kargc, kargv);
  // Kokkos removed the --kokkos-* arguments it consumed from its copy: give the program the same list back, with
  // the help flags it was not shown.
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    const bool help = std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0;
    bool kept = help;
    for (int k = 0; k < kargc && !kept; ++k) kept = kargv[k] == argv[i];
    if (kept && std::strcmp(argv[i], "--kokkos-help") != 0) rest.push_back(argv[i]);
  }
  for (std::size_t i = 0; i < rest.size(); ++i) argv[i] = rest[i];
  argc = int(rest.size());
  argv[argc] = nullptr;
  memory_tracker_install();
}

Runtime::~Runtime() {
  Kokkos::finalize();
  MPI_Finalize();
}

int Runtime::agree(bool failed) {
  int mine = failed ? rank_ : INT_MAX, lowest = INT_MAX;
  MPI_Request req;
  PARTRAIN_MPI_CHECK(MPI_Iallreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD, &req));
  for (int done = 0;;) {  // the yielding wait (the collectives library sits above core)
    PARTRAIN_MPI_CHECK(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
    if (done) return lowest;
    sched_yield();
  }
}

void Runtime::check_inputs() {
  if (agree(false) != INT_MAX) throw PeerInputFailure{};
}

void Runtime::inputs_done() {
  check_inputs();
  validating_ = false;
}

int run_app(const char* app, int& argc, char**& argv, const std::function<int(Runtime&)>& body) {
  Runtime rt(argc, argv);
  if (rt.kokkos_help()) return 0;
  try {
    return body(rt);
  } catch (const PeerInputFailure&) {
    return 2;
  } catch (const InputError& e) {
    if (!rt.validating_ || rt.agree(true) == rt.rank()) {
      std::fprintf(stderr, "%s: error: %s\n", app, e.what());
      std::fflush(stderr);
    }
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: [rank %d] fatal: %s\n", app, rt.rank(), e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
  }
}

}  // namespace partrain
