#include "partrain/core/error.hpp"

#include <hdf5.h>
#include <mpi.h>

#include <cstdio>

namespace partrain {

int world_rank_or_minus_one() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return -1;
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

std::string located_message(const char* file, int line, const std::string& what, const std::string& detail) {
  std::string msg = "[rank " + std::to_string(world_rank_or_minus_one()) + "] " + file + ":" +
                    std::to_string(line) + ": " + what;
  if (!detail.empty()) msg += ": " + detail;
  return msg;
}

void mpi_failure(int code, const char* call, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) std::snprintf(text, sizeof text, "error code %d", code);
  std::fprintf(stderr, "%s\n", located_message(file, line, std::string("MPI call failed: ") + call, text).c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 3);
  std::abort();
}

namespace {
herr_t first_error(unsigned n, const H5E_error2_t* err, void* out) {
  if (n == 0) {
    auto* s = static_cast<std::string*>(out);
    *s = std::string(err->func_name ? err->func_name : "?") + "(): " + (err->desc ? err->desc : "");
  }
  return 0;
}
}  // namespace

void hdf5_failure(const char* call, const char* file, int line) {
  std::string detail;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, first_error, &detail);
  H5Eclear2(H5E_DEFAULT);
  throw RuntimeError(located_message(file, line, std::string("HDF5 call failed: ") + call, detail));
}

void input_error(const std::string& key, const std::string& value, const std::string& reason) {
  throw InputError(key + " = " + value + ": " + reason);
}

}  // namespace partrain
