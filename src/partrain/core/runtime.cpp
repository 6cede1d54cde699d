#include "partrain/core/runtime.hpp"

#include <dlfcn.h>
#include <link.h>
#include <mpi.h>

#include <Kokkos_Core.hpp>
#include <cstdio>
#include <cstdlib>

#include "partrain/core/error.hpp"
#include "partrain/core/memory.hpp"

namespace partrain {

std::string blas_info() {
  using name_fn = char* (*)();
  auto config = reinterpret_cast<name_fn>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
  auto core = reinterpret_cast<name_fn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (!config || !core) {  // not OpenBLAS, or no BLAS in this executable: name what is loaded
    std::string names;
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* out) {
          const std::string n = info->dlpi_name ? info->dlpi_name : "";
          if (n.find("blas") != std::string::npos || n.find("mkl") != std::string::npos)
            *static_cast<std::string*>(out) += (static_cast<std::string*>(out)->empty() ? "" : ", ") + n;
          return 0;
        },
        &names);
    return names.empty() ? "no BLAS loaded" : names;
  }
  std::string s = config();
  s += " (core " + std::string(core()) + ")";
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  if (forced) s += " OPENBLAS_CORETYPE=" + std::string(forced);
  return s;
}

void pin_blas_to_one_thread() {
  if (std::getenv("OPENBLAS_NUM_THREADS")) return;
  using set_fn = void (*)(int);
  if (auto set = reinterpret_cast<set_fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(1);
}

Runtime::Runtime(int& argc, char**& argv) {
  int provided = 0;
  PARTRAIN_MPI_CHECK(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided));
  PARTRAIN_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  PARTRAIN_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
  pin_blas_to_one_thread();
  Kokkos::initialize(argc, argv);
  memory_tracker_install();
}

Runtime::~Runtime() {
  Kokkos::finalize();
  MPI_Finalize();
}

int run_app(const char* app, int argc, char** argv, const std::function<int(Runtime&)>& body) {
  Runtime rt(argc, argv);
  try {
    return body(rt);
  } catch (const InputError& e) {
    std::fprintf(stderr, "%s: error: %s\n", app, e.what());
    std::fflush(stderr);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: [rank %d] fatal: %s\n", app, rt.rank(), e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
  }
}

}  // namespace partrain
