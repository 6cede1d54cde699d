// Process start-up and shut-down for every partrain executable: MPI, Kokkos, the memory tracker, one BLAS
// thread per rank, and the handling of errors at the top of main.
#pragma once

#include <functional>
#include <string>

namespace partrain {

/// Which BLAS is loaded and the kernel it runs: "OpenBLAS 0.3.21 ... (core Haswell)" or "unknown BLAS".
std::string blas_info();
/// Calls openblas_set_num_threads(1) when OpenBLAS is loaded and OPENBLAS_NUM_THREADS is unset.
void pin_blas_to_one_thread();

/// MPI + Kokkos for the lifetime of the object.
class Runtime {
 public:
  Runtime(int& argc, char**& argv);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }

 private:
  int rank_ = 0, size_ = 1;
};

/// Runs `body` inside a Runtime. An InputError (bad input, raised identically on every rank before any
/// communication) prints "app: error: …" on every rank and returns 2; any other exception prints the error and
/// aborts the job (other ranks may be inside a collective), exit code 1.
int run_app(const char* app, int argc, char** argv, const std::function<int(Runtime&)>& body);

}  // namespace partrain
