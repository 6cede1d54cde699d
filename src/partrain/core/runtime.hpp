// Process start-up and shut-down for every partrain executable: MPI, Kokkos, the memory tracker, one BLAS
// thread per rank, and the handling of errors at the top of main.
//
// Bad input (InputError) is reported once, by the lowest rank that found it, and every rank exits with code 2.
// A rank cannot know by itself whether its peers found the same error (a path may be writable on one node and
// not on another), so validation ends at an agreement point: inputs_done() — and, before collective set-up that
// needs valid input, check_inputs() — is a collective in which every rank says whether it failed. A rank that
// throws an InputError before that point takes part in the same collective from its error handler, so the ranks
// never disagree about whether to go on, and nobody hangs waiting for a peer that has already given up.
#pragma once

#include <functional>
#include <string>

#include "partrain/core/version.hpp"

namespace partrain {

/// Calls openblas_set_num_threads(1) when OpenBLAS is loaded and OPENBLAS_NUM_THREADS is unset.
void pin_blas_to_one_thread();
/// Kokkos's version and default execution space ("4.6.1 (Cuda)"), as --version and result files name them.
std::string kokkos_version_line();
/// Adds that line to version_text (done at start-up in every program that links the runtime; a program that links
/// Kokkos without the runtime calls it itself).
void register_kokkos_version_line();

/// MPI + Kokkos for the lifetime of the object.
class Runtime {
 public:
  /// Kokkos never sees --help / -h (the program's usage comes first); --kokkos-help shows Kokkos' options.
  Runtime(int& argc, char**& argv);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }
  /// --kokkos-help was given (Kokkos printed its options on rank 0); the program should exit.
  bool kokkos_help() const { return kokkos_help_; }

  /// Agreement point inside validation (collective): if any rank has failed, this rank stops quietly (exit 2).
  void check_inputs();
  /// The last agreement point: from here on an InputError is reported by the rank that meets it.
  void inputs_done();

 private:
  friend int run_app(const char*, int&, char**&, const std::function<int(Runtime&)>&);
  /// The agreement collective: returns the lowest rank that failed (INT_MAX when none).
  int agree(bool failed);
  int rank_ = 0, size_ = 1;
  bool kokkos_help_ = false, validating_ = true;
};

/// Runs `body` inside a Runtime. An InputError during validation is printed once ("app: error: …", by the lowest
/// failing rank) and every rank returns 2; one after inputs_done() is printed by its rank, which returns 2. Any
/// other exception prints the error and aborts the job (other ranks may be inside a collective), exit code 1.
int run_app(const char* app, int& argc, char**& argv, const std::function<int(Runtime&)>& body);

}  // namespace partrain
